//! The findings: sentences stating what the data says, at the top of the page.

use std::fmt::Write as _;

use super::{Page, fmt, fmt_p, not_significant, ranked_augs, test_of};
use crate::analysis::{PairTest, SummaryRow};
use crate::chart::escape;
use clipshift_tables::schema::COSINE_SIMILARITY;

/// Sentences stating what the data says.
pub(crate) fn findings(p: &Page<'_>) -> Vec<String> {
    let mut out = most_and_least_disruptive(p);
    out.extend(noise_floor(p));
    out.extend(cosine_significance(p));
    out.extend(other_metrics_significance(p));
    if p.data.image_ids.len() < 6 {
        out.push(format!(
            "With {} images no two-sided Wilcoxon signed-rank test can reach p < 0.05 (the smallest exact p-value is 2 / 2<sup>n</sup>): run more images before reading significance.",
            p.data.image_ids.len()
        ));
    }
    for c in p.clusterings {
        let groups: Vec<String> = (1..=c.n_clusters() as u32)
            .map(|k| {
                let members: Vec<&str> =
                    c.labels.iter().zip(&c.clusters).filter(|(_, x)| **x == k).map(|(l, _)| l.as_str()).collect();
                format!("{{{}}}", escape(&members.join(", ")))
            })
            .collect();
        out.push(format!(
            "{} linkage of the {} at 0.7 \u{00d7} the largest merge ({:.4}) gives {} clusters: {}.",
            c.method.title(),
            c.set,
            c.threshold,
            c.n_clusters(),
            groups.join(" ")
        ));
    }
    out
}

/// Which augmentations stay inside the noise floor, when the suite has one.
fn noise_floor(p: &Page<'_>) -> Option<String> {
    let floor = p.floor?;
    let (inside, outside) = floor.inside_and_outside();
    let list = |augs: &[&str]| match augs {
        [] => "none".to_owned(),
        _ => augs.iter().map(|a| format!("<b>{}</b>", escape(a))).collect::<Vec<_>>().join(", "),
    };
    Some(format!(
        "Noise floor ({}): the smallest cosine similarity a change that should not matter gives averages {:.4} [{:.4}, {:.4}] over {} images. Inside the floor (the paired mean difference to it not below 0 at 95%, noise_floor.parquet): {}. Outside: {}.",
        escape(&floor.members.join(", ")),
        floor.band.mean,
        floor.band.lo,
        floor.band.hi,
        floor.band.n,
        list(&inside),
        list(&outside)
    ))
}

/// The most and the least disruptive augmentation by cosine similarity, and
/// how the most disruptive compares with the next one.
fn most_and_least_disruptive(p: &Page<'_>) -> Vec<String> {
    let mut cos: Vec<&SummaryRow> =
        p.summary.iter().filter(|r| r.metric == COSINE_SIMILARITY && r.mean.is_finite()).collect();
    cos.sort_by_key(|r| r.rank);
    if cos.len() < 2 {
        return Vec::new();
    }
    let worst = cos[0];
    let next = cos[1];
    let best = cos[cos.len() - 1];
    let shift = |r: &SummaryRow| 1.0 - r.mean;
    let ratio = if shift(next) > 0.0 {
        format!(
            ", {:.1}\u{00d7} the shift of the next most disruptive, <b>{}</b> (1 \u{2212} cos = {:.4})",
            shift(worst) / shift(next),
            escape(&next.augmentation),
            shift(next)
        )
    } else {
        String::new()
    };
    let gap = match test_of(p.tests, COSINE_SIMILARITY, &worst.augmentation, &next.augmentation) {
        Some(t) if t.p_holm.is_finite() => format!(
            " The gap to {} is {} (p<sub>Holm</sub> = {}).",
            escape(&next.augmentation),
            if not_significant(t) { "<b>not significant</b>" } else { "significant" },
            fmt_p(t.p_holm)
        ),
        _ => String::new(),
    };
    vec![
        format!(
            "The most disruptive augmentation is <b>{}</b>: mean cosine similarity {:.4} (95% CI {} to {}, n = {}), a shift of 1 \u{2212} cos = {:.4}{}.{gap}",
            escape(&worst.augmentation),
            worst.mean,
            fmt(worst.ci_low),
            fmt(worst.ci_high),
            worst.n,
            shift(worst),
            ratio
        ),
        format!(
            "The least disruptive is <b>{}</b>: mean cosine similarity {:.4} (95% CI {} to {}).",
            escape(&best.augmentation),
            best.mean,
            fmt(best.ci_low),
            fmt(best.ci_high)
        ),
    ]
}

/// How many pairwise differences in cosine similarity are significant, and
/// which pairs are not.
fn cosine_significance(p: &Page<'_>) -> Option<String> {
    let cos_tests: Vec<&PairTest> = p.tests.iter().filter(|t| t.metric == COSINE_SIMILARITY).collect();
    let total = cos_tests.len();
    let ns: Vec<&&PairTest> = cos_tests.iter().filter(|t| not_significant(t)).collect();
    if total == 0 {
        return None;
    }
    if ns.is_empty() {
        return Some(format!(
            "All {total} pairwise differences in cosine similarity are significant (paired Wilcoxon signed-rank, Holm-corrected, \u{03b1} = 0.05)."
        ));
    }
    // Grouped by the more disruptive member of each pair, in headline order.
    let order = ranked_augs(p);
    let pos = |a: &str| order.iter().position(|x| x == a).unwrap_or(usize::MAX);
    let mut groups = String::new();
    for a in &order {
        let partners: Vec<String> = ns
            .iter()
            .filter_map(|t| {
                let (x, y) = if pos(&t.a) <= pos(&t.b) { (&t.a, &t.b) } else { (&t.b, &t.a) };
                (x == a).then(|| (pos(y), format!("{} ({})", escape(y), fmt_p(t.p_holm))))
            })
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_values()
            .collect();
        if !partners.is_empty() {
            let _ = write!(groups, "<li><b>{}</b> vs {}</li>", escape(a), partners.join(", "));
        }
    }
    Some(format!(
        "{} of {total} pairwise differences in cosine similarity are significant and <b>{} are not</b> (paired Wilcoxon signed-rank over images, Holm-corrected, \u{03b1} = 0.05; p<sub>Holm</sub> in brackets):<ul>{groups}</ul>",
        total - ns.len(),
        ns.len()
    ))
}

/// How many pairs are not significantly different in each other metric.
fn other_metrics_significance(p: &Page<'_>) -> Option<String> {
    let others: Vec<String> = p
        .data
        .metrics
        .iter()
        .filter(|m| m.name != COSINE_SIMILARITY)
        .filter_map(|m| {
            let all = p.tests.iter().filter(|t| t.metric == m.name).count();
            let ns = p.tests.iter().filter(|t| t.metric == m.name && not_significant(t)).count();
            (all > 0).then(|| format!("{} {ns} of {all}", m.label))
        })
        .collect();
    (!others.is_empty()).then(|| {
        format!(
            "Pairs not significantly different in the other metrics: {} (full list: <a href=\"wilcoxon.parquet\">wilcoxon.parquet</a>).",
            others.join("; ")
        )
    })
}
