//! Which tenants a seed names: company × division slugs in a seed-chosen order, their names
//! and compliance frameworks.

use super::*;

pub(super) const COMPANIES: [&str; 16] = [
    "acme",
    "globex",
    "initech",
    "umbrella",
    "stark",
    "wayne",
    "tyrell",
    "cyberdyne",
    "hooli",
    "soylent",
    "wonka",
    "aperture",
    "vandelay",
    "oscorp",
    "massive-dynamic",
    "pied-piper",
];
pub(super) const DIVISIONS: [&str; 8] = [
    "robotics",
    "ai",
    "labs",
    "health",
    "agents",
    "analytics",
    "cloud",
    "finance",
];
pub(super) const FRAMEWORKS_GENERAL: &[&str] = &["SOC2", "ISO27001"];
pub(super) const FRAMEWORKS_HEALTH: &[&str] = &["HIPAA", "SOC2"];
pub(super) const FRAMEWORKS_AI: &[&str] = &["EU_AI_ACT", "GDPR"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct TenantSpec {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) frameworks: &'static [&'static str],
}

/// Tenant ids are a seed-chosen order of company × division slugs ("acme-robotics",
/// "globex-ai", …), suffixed `-2`, `-3`… once all combinations are used.
pub(super) fn tenant_specs(seed: u64, count: u32) -> Vec<TenantSpec> {
    let combos = COMPANIES.len() * DIVISIONS.len();
    let mut order: Vec<usize> = (0..combos).collect();
    let mut rng = Prng::derive(seed, &[STREAM_TENANT_NAMES]);
    for i in (1..order.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    (0..count as usize)
        .map(|i| {
            let combo = order[i % combos];
            let round = i / combos;
            let company = COMPANIES[combo / DIVISIONS.len()];
            let division = DIVISIONS[combo % DIVISIONS.len()];
            let slug = format!("{company}-{division}");
            let name = format!("{} {}", title(company), title(division));
            let (id, name) = if round == 0 {
                (slug, name)
            } else {
                (
                    format!("{slug}-{}", round + 1),
                    format!("{name} {}", round + 1),
                )
            };
            let frameworks = match division {
                "health" => FRAMEWORKS_HEALTH,
                "ai" | "agents" => FRAMEWORKS_AI,
                _ => FRAMEWORKS_GENERAL,
            };
            TenantSpec {
                id,
                name,
                frameworks,
            }
        })
        .collect()
}

/// "massive-dynamic" → "Massive Dynamic", "ai" → "AI".
pub(super) fn title(slug: &str) -> String {
    slug.split('-')
        .map(|word| {
            if word == "ai" {
                return "AI".to_string();
            }
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
