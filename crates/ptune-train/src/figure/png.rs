//! A [`Figure`] rasterised into a PNG: anti-aliased lines and circles by distance to the
//! shape, and text in an 8×8 bitmap font, so no font needs to be installed.

use super::{Anchor, Colour, Figure, Shape, TextSize, text_width};

pub fn render(figure: &Figure, scale: u32) -> anyhow::Result<Vec<u8>> {
    let s = f64::from(scale.max(1));
    let mut canvas = Canvas::new(
        (figure.width * s).ceil() as usize,
        (figure.height * s).ceil() as usize,
    );
    let at = |(x, y): (f64, f64)| (x * s, y * s);
    for shape in &figure.shapes {
        match shape {
            Shape::Line {
                points,
                colour,
                width,
                dashed,
            } => {
                let points: Vec<(f64, f64)> = points.iter().map(|&p| at(p)).collect();
                let pieces = match dashed {
                    true => dashes(&points, 6.0 * s, 4.0 * s),
                    false => points.windows(2).map(|w| (w[0], w[1])).collect(),
                };
                let half = width * s / 2.0;
                for (a, b) in pieces {
                    let area = Area::around(&[a, b], half);
                    canvas.paint(area, *colour, |p| half - segment_distance(p, a, b));
                }
            }
            Shape::Circle {
                at: centre,
                radius,
                colour,
                filled,
            } => {
                let (c, r) = (at(*centre), radius * s);
                let area = Area::around(&[c], r + s);
                match filled {
                    true => canvas.paint(area, *colour, |p| r - distance(p, c)),
                    false => canvas.paint(area, *colour, |p| s - (distance(p, c) - r).abs()),
                }
            }
            Shape::Text {
                at: origin,
                text,
                size,
                anchor,
                colour,
            } => canvas.text(at(*origin), text, *size, *anchor, *colour, s),
        }
    }
    canvas.encode()
}

/// The pixels a shape can touch: its points' bounding box grown by `margin` and a pixel.
struct Area {
    x: (f64, f64),
    y: (f64, f64),
}

impl Area {
    fn around(points: &[(f64, f64)], margin: f64) -> Self {
        let grow = margin + 1.0;
        let fold = |f: fn(&(f64, f64)) -> f64| {
            let lo = points.iter().map(f).fold(f64::INFINITY, f64::min);
            let hi = points.iter().map(f).fold(f64::NEG_INFINITY, f64::max);
            (lo - grow, hi + grow)
        };
        Self {
            x: fold(|p| p.0),
            y: fold(|p| p.1),
        }
    }

    /// The pixel indices in `0..limit` between `lo` and `hi`.
    fn range((lo, hi): (f64, f64), limit: usize) -> std::ops::Range<usize> {
        let clamp = |v: f64| (v.max(0.0) as usize).min(limit);
        clamp(lo.floor())..clamp(hi.ceil())
    }
}

/// Row-major RGB pixels on white.
struct Canvas {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            rgb: vec![255; width * height * 3],
        }
    }

    /// Blends `colour` into every pixel by its coverage: `inside(centre)` is how far the pixel
    /// centre lies inside the shape's edge (negative outside), clamped to a one-pixel ramp.
    fn paint(&mut self, area: Area, colour: Colour, inside: impl Fn((f64, f64)) -> f64) {
        for y in Area::range(area.y, self.height) {
            for x in Area::range(area.x, self.width) {
                let coverage = (inside((x as f64 + 0.5, y as f64 + 0.5)) + 0.5).clamp(0.0, 1.0);
                if coverage > 0.0 {
                    self.blend(x, y, colour, coverage);
                }
            }
        }
    }

    fn blend(&mut self, x: usize, y: usize, colour: Colour, alpha: f64) {
        let i = (y * self.width + x) * 3;
        for (channel, value) in [colour.0, colour.1, colour.2].into_iter().enumerate() {
            let old = f64::from(self.rgb[i + channel]);
            self.rgb[i + channel] = (old + (f64::from(value) - old) * alpha).round() as u8;
        }
    }

    fn text(
        &mut self,
        (x, y): (f64, f64),
        text: &str,
        size: TextSize,
        anchor: Anchor,
        colour: Colour,
        s: f64,
    ) {
        // One font pixel is `g` canvas pixels: 8 figure units per character, as `advance` says.
        let g = (size.advance() / 8.0 * s).round().max(1.0) as usize;
        let width = text_width(text, size) * s;
        let left = match anchor {
            Anchor::Start => x,
            Anchor::Middle => x - width / 2.0,
            Anchor::End => x - width,
        };
        // The baseline sits under the glyphs' seventh row.
        let top = y - 7.0 * g as f64;
        for (i, ch) in text.chars().enumerate() {
            let glyph = font8x8::legacy::BASIC_LEGACY[if ch.is_ascii() {
                ch as usize
            } else {
                '?' as usize
            }];
            let gx = left + (i * 8 * g) as f64;
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits >> col & 1 == 1 {
                        self.fill(gx + (col * g) as f64, top + (row * g) as f64, g, colour);
                    }
                }
            }
        }
    }

    /// A `g` × `g` block whose corner is at (`x`, `y`), clipped to the canvas.
    fn fill(&mut self, x: f64, y: f64, g: usize, colour: Colour) {
        let (x, y) = (x.round() as i64, y.round() as i64);
        for dy in 0..g as i64 {
            for dx in 0..g as i64 {
                let (px, py) = (x + dx, y + dy);
                if px >= 0 && py >= 0 && (px as usize) < self.width && (py as usize) < self.height {
                    self.blend(px as usize, py as usize, colour, 1.0);
                }
            }
        }
    }

    fn encode(&self) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&self.rgb)?;
        writer.finish()?;
        Ok(out)
    }
}

fn distance(a: (f64, f64), b: (f64, f64)) -> f64 {
    (a.0 - b.0).hypot(a.1 - b.1)
}

/// Distance from `p` to the segment `a`–`b`.
fn segment_distance(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = match len2 > 0.0 {
        true => (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0),
        false => 0.0,
    };
    distance(p, (a.0 + t * dx, a.1 + t * dy))
}

/// The "on" pieces of a dashed polyline: `on` long, `off` apart, continuing across corners.
fn dashes(points: &[(f64, f64)], on: f64, off: f64) -> Vec<((f64, f64), (f64, f64))> {
    let mut pieces = Vec::new();
    let mut phase = 0.0;
    for w in points.windows(2) {
        let (a, b) = (w[0], w[1]);
        let len = distance(a, b);
        let mut t = 0.0;
        while t < len {
            let at = |d: f64| (a.0 + (b.0 - a.0) * d / len, a.1 + (b.1 - a.1) * d / len);
            let (drawing, left) = match phase < on {
                true => (true, on - phase),
                false => (false, on + off - phase),
            };
            let step = left.min(len - t);
            if drawing {
                pieces.push((at(t), at(t + step)));
            }
            t += step;
            phase = (phase + step) % (on + off);
        }
    }
    pieces
}
