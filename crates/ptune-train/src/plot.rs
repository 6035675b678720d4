//! One relation's training curves: train loss per epoch, and dev P@1 from epoch 0 (the prompts
//! before training) on a fixed 0–1 axis, with the manual prompt's dev P@1 as a dashed line and
//! the kept (best) epoch ringed. Written as `curves.svg` and `curves.png`.

use crate::figure::{Anchor, Colour, Figure, TextSize, text_width};

/// What the curves show.
pub struct Curves<'a> {
    pub heading: &'a str,
    /// Mean train loss of epochs 1, 2, ...
    pub loss: &'a [f64],
    /// Dev P@1 of epochs 0, 1, 2, ...
    pub dev: &'a [f64],
    pub manual_dev: f64,
    pub best_epoch: usize,
}

const PANEL_W: f64 = 400.0;
const PANEL_H: f64 = 250.0;
const HEADING: f64 = 34.0;
const LOSS: Colour = Colour(0xc0, 0x39, 0x2b);
const DEV: Colour = Colour(0x24, 0x71, 0xa3);
const BEST: Colour = Colour(0xe6, 0x7e, 0x22);
const MANUAL: Colour = Colour(0x55, 0x55, 0x55);

/// The two panels side by side under the heading.
pub fn curves(c: &Curves) -> Figure {
    let epochs = c.dev.len().saturating_sub(1).max(c.loss.len()).max(1);
    let mut f = Figure::new(2.0 * PANEL_W, PANEL_H + HEADING);
    f.text((12.0, 22.0), c.heading, TextSize::Large, Anchor::Start);
    let loss = Panel::new(0.0, epochs, Axis::fit(c.loss));
    loss.frame(&mut f, "train loss (mean per epoch)");
    loss.series(&mut f, 1, c.loss, LOSS);
    let dev = Panel::new(PANEL_W, epochs, Axis::unit());
    dev.frame(&mut f, "dev P@1 (epoch 0: before training)");
    let manual_y = dev.y(c.manual_dev.clamp(0.0, 1.0));
    f.dashed(
        vec![(dev.left(), manual_y), (dev.right(), manual_y)],
        MANUAL,
        1.5,
    );
    // The manual label at the left, above its line (below it at the top of the plot).
    let label = format!("manual prompt {:.3}", c.manual_dev);
    let manual_above = manual_y > dev.top() + 20.0;
    let label_y = manual_y + if manual_above { -5.0 } else { 14.0 };
    f.text(
        (dev.left() + 4.0, label_y),
        &label,
        TextSize::Small,
        Anchor::Start,
    );
    dev.series(&mut f, 0, c.dev, DEV);
    if let Some(&best) = c.dev.get(c.best_epoch) {
        let at = (dev.x(c.best_epoch as f64), dev.y(best));
        f.circle(at, 7.0, BEST, false);
        let text = format!("best: epoch {}", c.best_epoch);
        // Above the ring, unless that is off the plot or onto the manual label.
        let clash = (at.1 - manual_y).abs() < 24.0 && manual_above;
        let below = at.1 < dev.top() + 30.0 || clash;
        let y = at.1 + if below { 22.0 } else { -12.0 };
        let half = text_width(&text, TextSize::Small) / 2.0;
        let x = at.0.clamp(dev.left() + half, dev.right() - half);
        f.text((x, y), &text, TextSize::Small, Anchor::Middle);
    }
    f
}

/// A value axis: from `lo` to `hi` in ticks of `step`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Axis {
    lo: f64,
    hi: f64,
    step: f64,
}

impl Axis {
    fn unit() -> Self {
        Self {
            lo: 0.0,
            hi: 1.0,
            step: 0.2,
        }
    }

    /// Round ticks (1, 2 or 5 times a power of ten, about five of them) around the values.
    fn fit(values: &[f64]) -> Self {
        let finite = values.iter().copied().filter(|v| v.is_finite());
        let lo = finite.clone().fold(f64::INFINITY, f64::min);
        let hi = finite.fold(f64::NEG_INFINITY, f64::max);
        if !lo.is_finite() {
            return Self::unit();
        }
        let span = (hi - lo).max(hi.abs() * 0.1).max(1e-6);
        let step = nice_step(span / 5.0);
        let lo = (lo / step).floor() * step;
        let hi = ((hi / step).ceil() * step).max(lo + step);
        Self { lo, hi, step }
    }

    fn ticks(&self) -> Vec<f64> {
        let n = ((self.hi - self.lo) / self.step).round() as usize;
        (0..=n).map(|i| self.lo + i as f64 * self.step).collect()
    }

    fn label(&self, v: f64) -> String {
        let decimals = (-self.step.log10().floor()).max(0.0) as usize;
        format!("{v:.decimals$}")
    }
}

/// The smallest of 1, 2, 5 × 10^k at or above `raw`.
fn nice_step(raw: f64) -> f64 {
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * power)
}

/// One plot area: epochs 0..=`epochs` across, `axis` up.
struct Panel {
    x0: f64,
    epochs: usize,
    axis: Axis,
}

impl Panel {
    const LEFT: f64 = 60.0;
    const RIGHT: f64 = 20.0;
    const TOP: f64 = 28.0;
    const BOTTOM: f64 = 46.0;

    fn new(x0: f64, epochs: usize, axis: Axis) -> Self {
        Self { x0, epochs, axis }
    }

    fn left(&self) -> f64 {
        self.x0 + Self::LEFT
    }

    fn right(&self) -> f64 {
        self.x0 + PANEL_W - Self::RIGHT
    }

    fn top(&self) -> f64 {
        HEADING + Self::TOP
    }

    fn bottom(&self) -> f64 {
        HEADING + PANEL_H - Self::BOTTOM
    }

    fn x(&self, epoch: f64) -> f64 {
        self.left() + (self.right() - self.left()) * epoch / self.epochs as f64
    }

    fn y(&self, v: f64) -> f64 {
        let Axis { lo, hi, .. } = self.axis;
        self.bottom() - (self.bottom() - self.top()) * (v - lo) / (hi - lo)
    }

    /// Grid, frame, tick labels on both axes, the axis name and the panel title.
    fn frame(&self, f: &mut Figure, title: &str) {
        for v in self.axis.ticks() {
            let y = self.y(v);
            f.line(vec![(self.left(), y), (self.right(), y)], Colour::GRID, 1.0);
            let label = self.axis.label(v);
            f.text(
                (self.left() - 6.0, y + 4.0),
                &label,
                TextSize::Small,
                Anchor::End,
            );
        }
        let step = epoch_step(self.epochs);
        for e in (0..=self.epochs).step_by(step) {
            let x = self.x(e as f64);
            f.line(
                vec![(x, self.bottom()), (x, self.bottom() + 4.0)],
                Colour::FRAME,
                1.0,
            );
            f.text(
                (x, self.bottom() + 17.0),
                &e.to_string(),
                TextSize::Small,
                Anchor::Middle,
            );
        }
        let corners = vec![
            (self.left(), self.top()),
            (self.right(), self.top()),
            (self.right(), self.bottom()),
            (self.left(), self.bottom()),
            (self.left(), self.top()),
        ];
        f.line(corners, Colour::FRAME, 1.0);
        let middle = (self.left() + self.right()) / 2.0;
        f.text(
            (middle, self.bottom() + 36.0),
            "epoch",
            TextSize::Small,
            Anchor::Middle,
        );
        f.text(
            (self.left(), self.top() - 9.0),
            title,
            TextSize::Small,
            Anchor::Start,
        );
    }

    /// A line through the finite values, the first at epoch `first`, with a dot on each.
    fn series(&self, f: &mut Figure, first: usize, values: &[f64], colour: Colour) {
        let points: Vec<(f64, f64)> = values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, &v)| (self.x((first + i) as f64), self.y(v)))
            .collect();
        if points.len() > 1 {
            f.line(points.clone(), colour, 2.0);
        }
        for p in points {
            f.circle(p, 3.5, colour, true);
        }
    }
}

/// Epochs between x ticks: every one up to 12, then 1, 2 or 5 × 10^k for at most 12 ticks.
fn epoch_step(epochs: usize) -> usize {
    match epochs {
        0..=12 => 1,
        n => nice_step(n as f64 / 12.0).round().max(1.0) as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figure::Shape;

    fn example() -> Figure {
        curves(&Curves {
            heading: "P36 <capital> & co",
            loss: &[1.6, 0.55, 0.42],
            dev: &[0.25, 0.5, 0.875, 0.75],
            manual_dev: 0.5,
            best_epoch: 2,
        })
    }

    fn texts(f: &Figure) -> Vec<String> {
        f.shapes
            .iter()
            .filter_map(|s| match s {
                Shape::Text { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    /// Dev P@1 sits on 0–1 whatever the values, every epoch from 0 has a tick and a dot, the
    /// manual line and the best epoch are labelled, and the loss axis has round ticks.
    #[test]
    fn the_curves_carry_their_reference_points() {
        let f = example();
        let t = texts(&f);
        for want in [
            "0.0",
            "0.2",
            "1.0",
            "0",
            "3",
            "epoch",
            "manual prompt 0.500",
            "best: epoch 2",
        ] {
            assert!(t.iter().any(|x| x == want), "{want} missing from {t:?}");
        }
        for want in ["0.0", "0.5", "1.5", "2.0"] {
            assert!(
                t.iter().any(|x| x == want),
                "loss tick {want} missing from {t:?}"
            );
        }
        let dots = f
            .shapes
            .iter()
            .filter(|s| matches!(s, Shape::Circle { filled: true, .. }))
            .count();
        assert_eq!(dots, 3 + 4);
        let dashed = f
            .shapes
            .iter()
            .filter(|s| matches!(s, Shape::Line { dashed: true, .. }));
        assert_eq!(dashed.count(), 1);
        let svg = f.svg();
        assert!(svg.contains("P36 &lt;capital&gt; &amp; co"), "{svg}");
        assert!(svg.contains("stroke-dasharray"));
    }

    /// The PNG decodes to the figure's size at the scale asked for, on white, with the series
    /// colours and dark text pixels in it.
    #[test]
    fn the_png_is_a_real_image_of_the_figure() {
        let f = example();
        let bytes = f.png(2).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut rgb = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut rgb).unwrap();
        assert_eq!(
            (info.width, info.height),
            (1600, 2 * (PANEL_H + HEADING) as u32)
        );
        let pixels: Vec<&[u8]> = rgb.chunks(3).collect();
        let count = |c: Colour| pixels.iter().filter(|p| **p == [c.0, c.1, c.2]).count();
        assert!(count(Colour::WHITE) > pixels.len() / 2);
        assert!(count(DEV) > 200 && count(LOSS) > 200, "series drawn");
        assert!(count(Colour::INK) > 500, "text drawn");
    }

    #[test]
    fn empty_and_flat_series_still_render() {
        for (loss, dev) in [(&[][..], &[][..]), (&[0.5, 0.5][..], &[0.0, 0.0, 0.0][..])] {
            let f = curves(&Curves {
                heading: "x",
                loss,
                dev,
                manual_dev: 0.0,
                best_epoch: 0,
            });
            assert!(f.svg().ends_with("</svg>\n"));
            assert!(f.png(1).is_ok());
        }
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(nice_step(0.11), 0.2);
        assert_eq!(epoch_step(40), 5);
        let axis = Axis::fit(&[2.31, 0.07]);
        assert_eq!((axis.lo, axis.hi, axis.step), (0.0, 2.5, 0.5));
    }
}
