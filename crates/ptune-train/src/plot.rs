//! Training curves as a small self-contained SVG: loss and dev P@1 per epoch, side by side.

use std::fmt::Write;

const W: f64 = 360.0;
const H: f64 = 220.0;
const PAD: f64 = 52.0;

/// One panel's series: a title, y values per epoch (1-based), and a colour.
pub struct Series<'a> {
    pub title: &'a str,
    pub values: &'a [f64],
    pub colour: &'a str,
}

/// Renders panels left to right into one SVG document.
pub fn svg(heading: &str, panels: &[Series]) -> String {
    let width = W * panels.len() as f64;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{}" font-family="sans-serif" font-size="11">"#,
        H + 24.0
    );
    let _ = write!(
        out,
        r#"<text x="8" y="16" font-size="13">{}</text>"#,
        escape(heading)
    );
    for (i, series) in panels.iter().enumerate() {
        panel(&mut out, i as f64 * W, 24.0, series);
    }
    out.push_str("</svg>\n");
    out
}

fn panel(out: &mut String, x0: f64, y0: f64, s: &Series) {
    let (lo, hi) = range(s.values);
    let n = s.values.len().max(2);
    let px = |i: usize| x0 + PAD + (W - 1.5 * PAD) * i as f64 / (n - 1) as f64;
    let py = |v: f64| y0 + H - PAD - (H - 1.5 * PAD) * (v - lo) / (hi - lo);
    let _ = write!(
        out,
        r##"<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#888"/>"##,
        x0 + PAD,
        y0 + PAD / 2.0,
        W - 1.5 * PAD,
        H - 1.5 * PAD
    );
    let _ = write!(
        out,
        r#"<text x="{}" y="{}">{}</text>"#,
        x0 + PAD,
        y0 + PAD / 2.0 - 4.0,
        escape(s.title)
    );
    let _ = write!(
        out,
        r#"<text x="{}" y="{}" text-anchor="end">{hi:.3}</text>"#,
        x0 + PAD - 4.0,
        py(hi) + 4.0
    );
    let _ = write!(
        out,
        r#"<text x="{}" y="{}" text-anchor="end">{lo:.3}</text>"#,
        x0 + PAD - 4.0,
        py(lo)
    );
    let _ = write!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">epoch</text>"#,
        x0 + W / 2.0,
        y0 + H - 8.0
    );
    let points: Vec<String> = s
        .values
        .iter()
        .enumerate()
        .map(|(i, &v)| format!("{:.1},{:.1}", px(i), py(v)))
        .collect();
    let _ = write!(
        out,
        r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
        s.colour,
        points.join(" ")
    );
}

/// Y range with a margin; a flat series still gets a visible band.
fn range(values: &[f64]) -> (f64, f64) {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    match (lo.is_finite(), hi - lo) {
        (false, _) => (0.0, 1.0),
        (true, d) if d < 1e-9 => (lo - 0.5, hi + 0.5),
        _ => (lo, hi),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_point_per_epoch_and_escaped_titles() {
        let loss = [3.0, 2.0, 1.5];
        let doc = svg(
            "P36 <capital> & co",
            &[Series {
                title: "loss",
                values: &loss,
                colour: "red",
            }],
        );
        assert!(doc.starts_with("<svg") && doc.trim_end().ends_with("</svg>"));
        assert!(doc.contains("P36 &lt;capital&gt; &amp; co"));
        let points = doc
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(points.split(' ').count(), 3);
    }

    #[test]
    fn flat_and_empty_series_still_render() {
        let flat = [0.5, 0.5];
        assert!(
            svg(
                "x",
                &[Series {
                    title: "dev",
                    values: &flat,
                    colour: "blue"
                }]
            )
            .contains("polyline")
        );
        assert!(
            svg(
                "x",
                &[Series {
                    title: "dev",
                    values: &[],
                    colour: "blue"
                }]
            )
            .contains("polyline")
        );
    }
}
