//! `ptune`: P-tuning on frozen language models.

use ptune_train::{eval, predict, serve, train};

use clap::{Parser, Subcommand};

/// P-tuning ("GPT Understands, Too"): train prompts for a frozen language model, score and use them.
///
/// `ptune train` P-tunes a prompt encoder per relation of a LAMA-style data set and compares it
/// with the relation's manual prompt; `ptune eval` scores a saved prompt pack on a split;
/// `ptune predict` shows a model's top-k answers, with or without a pack.
///
/// Models load from a Hugging Face style directory (config.json, model.safetensors or
/// pytorch_model.bin, tokenizer.json or vocab files), a single llama.cpp .gguf file, or a hub
/// id when online. Supported: BERT, RoBERTa, GPT-2, Llama/Mistral/Qwen2.
#[derive(Debug, Parser)]
#[command(name = "ptune", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show a frozen model's top-k tokens at each [MASK] (masked LM) or next (causal LM).
    ///
    /// Examples:
    ///   ptune predict --model ~/.cache/ptune/models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf "The capital of France is"
    ///   ptune predict --model ./bert-base-cased "Paris is the capital of [MASK]." --top-k 10 --json
    #[command(verbatim_doc_comment)]
    Predict(predict::PredictArgs),
    /// P-tune prompts for one or more relations and compare them with the manual prompt.
    ///
    /// Writes into --out: run.json, summary.{md,csv,json}, and per relation a prompt pack
    /// (prompt.safetensors + prompt.json), history.json and curves.svg.
    ///
    /// Example:
    ///   ptune train --model ~/.cache/ptune/models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \
    ///     --data datasets/facts --all-relations --out runs/smollm2
    #[command(verbatim_doc_comment)]
    Train(Box<train::TrainArgs>),
    /// Score a prompt pack on a split of a data set (P@1, P@10, MRR over its vocabulary).
    ///
    /// Example:
    ///   ptune eval --pack runs/smollm2-facts/P36 --data datasets/facts
    #[command(verbatim_doc_comment)]
    Eval(eval::EvalArgs),
    /// Serve prompt packs over HTTP + JSON: one frozen model, any number of packs, requests for
    /// different packs batched into one forward pass.
    ///
    /// Routes: POST /predict {"pack", "inputs": [...], "top_k"} → per input the top answers
    /// (the numbers `ptune predict --pack` prints); GET /packs; POST /packs {"path", "name"};
    /// DELETE /packs/NAME; GET /health; GET /metrics. SIGTERM or Ctrl-C finishes the requests
    /// in flight, then exits 0.
    ///
    /// Example:
    ///   ptune serve --pack runs/smollm2/P36 --pack runs/smollm2/P19 --port 8080
    ///   curl -s localhost:8080/predict -d '{"pack": "P36", "inputs": ["Peru", "Kenya"], "top_k": 3}'
    #[command(verbatim_doc_comment)]
    Serve(serve::ServeArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Predict(args) => predict::run(args),
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Serve(args) => serve::run(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
