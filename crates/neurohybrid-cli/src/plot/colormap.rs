//! Colour maps: value in [0, 1] → RGB, by linear interpolation between control points.

use plotters::style::RGBColor;

/// A colour map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Colormap {
    /// Perceptually uniform dark blue → green → yellow (matplotlib's viridis, 9 control
    /// points); the default for densities and concentrations.
    #[default]
    Viridis,
    /// Black → red → yellow → white (matplotlib's inferno, 7 control points); for perfusion.
    Inferno,
    /// Blue → white → red, for signed errors (centre the range on 0).
    Diverging,
    /// Black → white.
    Gray,
}

const VIRIDIS: [[u8; 3]; 9] = [
    [68, 1, 84],
    [71, 44, 122],
    [59, 81, 139],
    [44, 113, 142],
    [33, 144, 141],
    [39, 173, 129],
    [92, 200, 99],
    [170, 220, 50],
    [253, 231, 37],
];
const INFERNO: [[u8; 3]; 7] = [
    [0, 0, 4],
    [40, 11, 84],
    [101, 21, 110],
    [159, 42, 99],
    [212, 72, 66],
    [245, 125, 21],
    [252, 255, 164],
];
const DIVERGING: [[u8; 3]; 5] =
    [[33, 102, 172], [146, 197, 222], [247, 247, 247], [244, 165, 130], [178, 24, 43]];
const GRAY: [[u8; 3]; 2] = [[0, 0, 0], [255, 255, 255]];

impl Colormap {
    fn stops(self) -> &'static [[u8; 3]] {
        match self {
            Colormap::Viridis => &VIRIDIS,
            Colormap::Inferno => &INFERNO,
            Colormap::Diverging => &DIVERGING,
            Colormap::Gray => &GRAY,
        }
    }

    /// The colour at `s` in [0, 1] (clamped; NaN maps to 0).
    pub fn at(self, s: f64) -> RGBColor {
        let stops = self.stops();
        let s = if s.is_nan() { 0.0 } else { s.clamp(0.0, 1.0) };
        let x = s * (stops.len() - 1) as f64;
        let i = (x.floor() as usize).min(stops.len() - 2);
        let f = x - i as f64;
        let mix = |a: u8, b: u8| (a as f64 + f * (b as f64 - a as f64)).round() as u8;
        let (a, b) = (stops[i], stops[i + 1]);
        RGBColor(mix(a[0], b[0]), mix(a[1], b[1]), mix(a[2], b[2]))
    }

    /// The colour of `v` on the range `[lo, hi]`.
    pub fn map(self, v: f64, lo: f64, hi: f64) -> RGBColor {
        let span = hi - lo;
        self.at(if span > 0.0 { (v - lo) / span } else { 0.5 })
    }
}

/// `[min, max]` of the finite values (optionally only where `mask` is true); `(0, 1)` when
/// there are none, and a widened range when all values are equal.
pub(crate) fn finite_range<'a>(
    values: impl Iterator<Item = &'a f64>,
    mask: Option<&[bool]>,
) -> (f64, f64) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for (i, &v) in values.enumerate() {
        if mask.is_some_and(|m| !m[i]) || !v.is_finite() {
            continue;
        }
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        (0.0, 1.0)
    } else if lo == hi {
        let d = if lo == 0.0 { 1.0 } else { 0.5 * lo.abs() };
        (lo - d, hi + d)
    } else {
        (lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_clamping() {
        assert_eq!(Colormap::Viridis.at(0.0), RGBColor(68, 1, 84));
        assert_eq!(Colormap::Viridis.at(1.0), RGBColor(253, 231, 37));
        assert_eq!(Colormap::Viridis.at(7.0), Colormap::Viridis.at(1.0));
        assert_eq!(Colormap::Gray.at(0.5), RGBColor(128, 128, 128));
        assert_eq!(Colormap::Diverging.map(0.0, -1.0, 1.0), RGBColor(247, 247, 247));
    }

    #[test]
    fn ranges() {
        let v = [3.0, f64::NAN, -1.0, 10.0];
        assert_eq!(finite_range(v.iter(), None), (-1.0, 10.0));
        assert_eq!(finite_range(v.iter(), Some(&[true, true, true, false])), (-1.0, 3.0));
        assert_eq!(finite_range([2.0].iter(), None), (1.0, 3.0));
        assert_eq!(finite_range([].iter(), None), (0.0, 1.0));
    }
}
