//! A chart as a list of shapes in pixel coordinates, drawn once and written twice: as SVG
//! (`svg.rs`) and as PNG (`png.rs`, which needs no font on the machine).

mod png;
mod svg;

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colour(pub u8, pub u8, pub u8);

impl Colour {
    pub const INK: Colour = Colour(0x33, 0x33, 0x33);
    pub const GRID: Colour = Colour(0xdd, 0xdd, 0xdd);
    pub const FRAME: Colour = Colour(0x88, 0x88, 0x88);
    pub const WHITE: Colour = Colour(0xff, 0xff, 0xff);

    fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

/// Where a text's anchor point sits: its start, middle or end (the baseline is the point's y).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

/// Tick labels and notes, or headings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextSize {
    Small,
    Large,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// A polyline; `dashed` for reference lines.
    Line {
        points: Vec<(f64, f64)>,
        colour: Colour,
        width: f64,
        dashed: bool,
    },
    /// A disc (`filled`) or a ring.
    Circle {
        at: (f64, f64),
        radius: f64,
        colour: Colour,
        filled: bool,
    },
    Text {
        at: (f64, f64),
        text: String,
        size: TextSize,
        anchor: Anchor,
        colour: Colour,
    },
}

/// A white canvas of `width` × `height` pixels and what is drawn on it, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub width: f64,
    pub height: f64,
    pub shapes: Vec<Shape>,
}

impl Figure {
    pub fn new(width: f64, height: f64) -> Self {
        Self {
            width,
            height,
            shapes: Vec::new(),
        }
    }

    pub fn line(&mut self, points: Vec<(f64, f64)>, colour: Colour, width: f64) {
        self.shapes.push(Shape::Line {
            points,
            colour,
            width,
            dashed: false,
        });
    }

    pub fn dashed(&mut self, points: Vec<(f64, f64)>, colour: Colour, width: f64) {
        self.shapes.push(Shape::Line {
            points,
            colour,
            width,
            dashed: true,
        });
    }

    pub fn circle(&mut self, at: (f64, f64), radius: f64, colour: Colour, filled: bool) {
        self.shapes.push(Shape::Circle {
            at,
            radius,
            colour,
            filled,
        });
    }

    pub fn text(&mut self, at: (f64, f64), text: &str, size: TextSize, anchor: Anchor) {
        self.shapes.push(Shape::Text {
            at,
            text: text.to_string(),
            size,
            anchor,
            colour: Colour::INK,
        });
    }

    /// The SVG document.
    pub fn svg(&self) -> String {
        svg::render(self)
    }

    /// The PNG file's bytes, drawn at `scale` pixels per unit (2 gives a sharp image on
    /// high-density screens and in documents).
    pub fn png(&self, scale: u32) -> anyhow::Result<Vec<u8>> {
        png::render(self, scale)
    }
}

impl TextSize {
    /// Units per character: the PNG's 8×8 bitmap font at 1 or 1.5 units per font pixel, which
    /// the SVG's monospace font at [`TextSize::svg_size`] matches.
    pub fn advance(self) -> f64 {
        match self {
            TextSize::Small => 8.0,
            TextSize::Large => 12.0,
        }
    }

    fn svg_size(self) -> f64 {
        self.advance() / 0.6
    }
}

/// Width of `text` in figure units.
pub fn text_width(text: &str, size: TextSize) -> f64 {
    text.chars().count() as f64 * size.advance()
}
