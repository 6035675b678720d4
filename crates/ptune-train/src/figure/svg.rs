//! A [`Figure`] as an SVG document.

use super::{Anchor, Figure, Shape};
use std::fmt::Write;

pub fn render(figure: &Figure) -> String {
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace">"#,
        figure.width, figure.height, figure.width, figure.height
    );
    let _ = write!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    for shape in &figure.shapes {
        shape_svg(&mut out, shape);
    }
    out.push_str("</svg>\n");
    out
}

fn shape_svg(out: &mut String, shape: &Shape) {
    let _ = match shape {
        Shape::Line {
            points,
            colour,
            width,
            dashed,
        } => {
            let points: Vec<String> = points
                .iter()
                .map(|(x, y)| format!("{x:.1},{y:.1}"))
                .collect();
            let dash = if *dashed {
                r#" stroke-dasharray="6 4""#
            } else {
                ""
            };
            write!(
                out,
                r#"<polyline fill="none" stroke="{}" stroke-width="{width}"{dash} points="{}"/>"#,
                colour.hex(),
                points.join(" ")
            )
        }
        Shape::Circle {
            at,
            radius,
            colour,
            filled,
        } => {
            let paint = match filled {
                true => format!(r#"fill="{}""#, colour.hex()),
                false => format!(r#"fill="none" stroke="{}" stroke-width="2""#, colour.hex()),
            };
            write!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="{radius}" {paint}/>"#,
                at.0, at.1
            )
        }
        Shape::Text {
            at,
            text,
            size,
            anchor,
            colour,
        } => {
            let anchor = match anchor {
                Anchor::Start => "start",
                Anchor::Middle => "middle",
                Anchor::End => "end",
            };
            write!(
                out,
                r#"<text x="{:.1}" y="{:.1}" font-size="{:.1}" text-anchor="{anchor}" fill="{}">{}</text>"#,
                at.0,
                at.1,
                size.svg_size(),
                colour.hex(),
                escape(text)
            )
        }
    };
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
