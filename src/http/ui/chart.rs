//! A time chart drawn on the server as inline SVG: it reads without
//! JavaScript, needs no chart library, and its colours come from the
//! stylesheet (classes, not inline styles, for the CSP).

use maud::{Markup, html};

const W: f64 = 800.0;
const H: f64 = 180.0;
const LEFT: f64 = 56.0;
const BOTTOM: f64 = 22.0;
const TOP: f64 = 8.0;

/// The smallest "round" number (1, 2 or 5 times a power of ten) ≥ `v`.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

fn axis_label(v: f64) -> String {
    if v >= 1_000_000.0 {
        format!("{}M", trim(v / 1_000_000.0))
    } else if v >= 1000.0 {
        format!("{}k", trim(v / 1000.0))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A line chart of `points` (label, value), oldest first. `title` is read
/// by screen readers.
pub fn line(title: &str, points: &[(String, f64)]) -> Markup {
    let max = nice_ceiling(points.iter().map(|p| p.1).fold(0.0, f64::max));
    let n = points.len().max(1);
    let step = if n > 1 {
        (W - LEFT - 8.0) / (n - 1) as f64
    } else {
        0.0
    };
    let x = |i: usize| LEFT + step * i as f64;
    let y = |v: f64| TOP + (H - TOP - BOTTOM) * (1.0 - (v / max).clamp(0.0, 1.0));
    let mut line = String::new();
    for (i, (_, v)) in points.iter().enumerate() {
        line.push_str(&format!(
            "{}{:.1},{:.1} ",
            if i == 0 { "M" } else { "L" },
            x(i),
            y(*v)
        ));
    }
    let area = if points.is_empty() {
        String::new()
    } else {
        format!(
            "{line}L{:.1},{:.1} L{:.1},{:.1} Z",
            x(points.len() - 1),
            H - BOTTOM,
            x(0),
            H - BOTTOM
        )
    };
    // At most about eight x labels, evenly spaced.
    let every = n.div_ceil(8).max(1);
    html! {
        svg.chart viewBox=(format!("0 0 {W} {H}")) role="img" aria-label=(title) {
            title { (title) }
            @for k in 0..=5 {
                @let v = max * f64::from(k) / 5.0;
                line.grid x1=(LEFT) x2=(W - 4.0) y1=(format!("{:.1}", y(v))) y2=(format!("{:.1}", y(v))) {}
                text x=(LEFT - 6.0) y=(format!("{:.1}", y(v) + 4.0)) text-anchor="end" { (axis_label(v)) }
            }
            @if !points.is_empty() {
                path.area d=(area) {}
                path.line d=(line) {}
            }
            @for (i, (label, _)) in points.iter().enumerate() {
                @if i % every == 0 {
                    // The last label ends at its point, inside the frame.
                    text x=(format!("{:.1}", x(i))) y=(H - 6.0) text-anchor=(if i + 1 == n && n > 1 { "end" } else { "middle" }) { (label) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_is_round_and_points_are_drawn() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(12.0), 20.0);
        assert_eq!(nice_ceiling(4200.0), 5000.0);
        assert_eq!(axis_label(2500.0), "2.5k");
        let svg = line("Clicks", &[("a".into(), 1.0), ("b".into(), 3.0)]).into_string();
        assert!(
            svg.contains("<svg") && svg.contains("M56.0,") && svg.contains("<title>Clicks</title>"),
            "{svg}"
        );
    }
}
