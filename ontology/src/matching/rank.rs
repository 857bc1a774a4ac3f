//! From query rows to ranked, explained candidates.
//!
//! Score: the sum, over the criteria a row carries, of its margin over the
//! request's bound scaled to about [0, 1] — price `1 - amount / max` (only
//! with a maximum price, as prices in other currencies or units do not
//! compare), replication `(factor - min) / 10` (min 1 if unbounded),
//! durability `(nines - min) / 20` (min 0 if unbounded), availability
//! `(percent - min) / (100 - min)` (only with a minimum). Each service is
//! represented by its best row (best score, then lowest price, then offer
//! IRI), so a cloud's cheapest adequate flavor or best storage class stands
//! for it.

use super::request::{
    Consistency, Encapsulation, MAX_REPLICATION, MatchRequest, RegionFilter, ServiceKind,
};
use oxigraph::model::Term;
use oxigraph::sparql::QuerySolution;
use std::collections::BTreeMap;
use std::fmt;

/// A price as a descriptor states it.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferPrice {
    /// Amount of money.
    pub amount: f64,
    /// ISO 4217 currency code.
    pub currency: String,
    /// Local name of the `ic:perUnit` individual, e.g. "GiBMonth".
    pub unit: String,
    /// Local name of the `ic:perTime` individual, if any, e.g. "Month".
    pub per_time: Option<String>,
}

/// One row of the matching query, typed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MatchRow {
    /// The `ic:cloudId` of the graph's cloud.
    pub cloud_id: String,
    /// IRI of the service.
    pub service: String,
    /// IRI of the storage class or VM flavor, for those kinds.
    pub offer: Option<String>,
    /// ISO 3166-1 alpha-2 code of the service's region.
    pub country: String,
    /// Storage class replication factor.
    pub replication: Option<u32>,
    /// Storage class durability, in nines.
    pub durability_nines: Option<f64>,
    /// Storage class consistency.
    pub consistency: Option<Consistency>,
    /// The offer's (or service's) price.
    pub price: Option<OfferPrice>,
    /// SLA availability, in percent.
    pub availability: Option<f64>,
    /// Flavor vCPUs.
    pub vcpu: Option<u32>,
    /// Flavor memory, MiB.
    pub memory_mib: Option<u64>,
    /// A supported encapsulation.
    pub encapsulation: Option<Encapsulation>,
}

/// A value in a query row that is not what the ontology says it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("?{variable}: unexpected value {value}")]
pub struct RowError {
    /// The variable.
    pub variable: &'static str,
    /// The value, in N-Triples form (or "unbound").
    pub value: String,
}

fn local_name(iri: &str) -> &str {
    iri.rsplit(['#', '/']).next().unwrap_or(iri)
}

impl MatchRow {
    /// Reads a solution of [`MatchRequest::to_sparql`]'s query.
    pub fn from_solution(solution: &QuerySolution) -> Result<Self, RowError> {
        fn bad(variable: &'static str, term: Option<&Term>) -> RowError {
            RowError {
                variable,
                value: term.map_or_else(|| "unbound".into(), ToString::to_string),
            }
        }
        let literal = |variable: &'static str| -> Result<Option<String>, RowError> {
            match solution.get(variable) {
                None => Ok(None),
                Some(Term::Literal(l)) => Ok(Some(l.value().to_owned())),
                other => Err(bad(variable, other)),
            }
        };
        let iri = |variable: &'static str| -> Result<Option<String>, RowError> {
            match solution.get(variable) {
                None => Ok(None),
                Some(Term::NamedNode(n)) => Ok(Some(n.as_str().to_owned())),
                Some(Term::BlankNode(b)) => Ok(Some(format!("_:{}", b.as_str()))),
                other => Err(bad(variable, other)),
            }
        };
        fn number<T: std::str::FromStr>(
            variable: &'static str,
            value: Option<String>,
            solution: &QuerySolution,
        ) -> Result<Option<T>, RowError> {
            value
                .map(|v| {
                    v.trim()
                        .parse()
                        .map_err(|_| bad(variable, solution.get(variable)))
                })
                .transpose()
        }
        let cloud_id = literal("cloudId")?.ok_or_else(|| bad("cloudId", None))?;
        let service = iri("service")?.ok_or_else(|| bad("service", None))?;
        let country = literal("country")?.ok_or_else(|| bad("country", None))?;
        let consistency = match iri("consistency")?.as_deref().map(local_name) {
            None => None,
            Some("Strong") => Some(Consistency::Strong),
            Some("Eventual") => Some(Consistency::Eventual),
            Some(_) => return Err(bad("consistency", solution.get("consistency"))),
        };
        let encapsulation = match iri("encapsulation")? {
            None => None,
            Some(e) => Some(
                local_name(&e)
                    .parse()
                    .map_err(|_| bad("encapsulation", solution.get("encapsulation")))?,
            ),
        };
        let price = match (
            number::<f64>("amount", literal("amount")?, solution)?,
            literal("currency")?,
            iri("unit")?,
        ) {
            (Some(amount), Some(currency), Some(unit)) => Some(OfferPrice {
                amount,
                currency,
                unit: local_name(&unit).to_owned(),
                per_time: iri("perTime")?.map(|t| local_name(&t).to_owned()),
            }),
            _ => None,
        };
        Ok(Self {
            cloud_id,
            service,
            offer: iri("offer")?,
            country,
            replication: number("replication", literal("replication")?, solution)?,
            durability_nines: number("durability", literal("durability")?, solution)?,
            consistency,
            price,
            availability: number("availability", literal("availability")?, solution)?,
            vcpu: number("vcpu", literal("vcpu")?, solution)?,
            memory_mib: number("memory", literal("memory")?, solution)?,
            encapsulation,
        })
    }
}

/// A service that meets the request.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The cloud offering it.
    pub cloud_id: String,
    /// IRI of the service.
    pub service: String,
    /// IRI of the storage class or VM flavor that matched, for those kinds.
    pub offer: Option<String>,
    /// Higher is better; see the module documentation.
    pub score: f64,
    /// One sentence per criterion, in words.
    pub explanation: Vec<String>,
}

/// A cloud whose services are not among the candidates, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    /// The cloud.
    pub cloud_id: String,
    /// Why, e.g. "offline".
    pub reason: String,
}

impl fmt::Display for LeftOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} left out: {}", self.cloud_id, self.reason)
    }
}

/// The answer to a request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ranking {
    /// Matching services, best first (score descending, then cloud id,
    /// then service IRI).
    pub candidates: Vec<Candidate>,
    /// Clouds that had matching services but were left out, by cloud id.
    pub left_out: Vec<LeftOut>,
}

fn unit_words(price: &OfferPrice) -> String {
    let unit = match price.unit.as_str() {
        "GiBMonth" => "GiB-month",
        "VcpuHour" => "vCPU-hour",
        "InstanceHour" => "instance-hour",
        "Request" => "request",
        "Session" => "session",
        other => other,
    };
    match price.per_time.as_deref() {
        Some(time) => format!("{unit}/{}", time.to_ascii_lowercase()),
        None => unit.to_owned(),
    }
}

fn score_and_explain(row: &MatchRow, request: &MatchRequest) -> (f64, Vec<String>) {
    let mut score = 0.0;
    let mut why = Vec::new();
    if let Some(offer) = &row.offer {
        let what = match request.kind {
            ServiceKind::Storage => "storage class",
            ServiceKind::Compute => "flavor",
            _ => "offer",
        };
        why.push(format!("{what} {}", local_name(offer)));
    }
    why.push(match &request.region {
        Some(RegionFilter::Area(area)) => format!("in {} ({area})", row.country),
        _ => format!("in {}", row.country),
    });
    if let Some(factor) = row.replication {
        let min = request.min_replication.unwrap_or(1);
        score += f64::from(factor.saturating_sub(min)) / f64::from(MAX_REPLICATION);
        why.push(match request.min_replication {
            Some(min) => format!("replication {factor} ≥ {min}"),
            None => format!("replication {factor}"),
        });
    }
    if let Some(nines) = row.durability_nines {
        let min = request.min_durability_nines.unwrap_or(0.0);
        score += ((nines - min) / 20.0).max(0.0);
        why.push(match request.min_durability_nines {
            Some(min) => format!("durability {nines} nines ≥ {min}"),
            None => format!("durability {nines} nines"),
        });
    }
    if let Some(consistency) = row.consistency {
        why.push(format!("{consistency} consistency"));
    }
    if let Some(vcpu) = row.vcpu {
        why.push(match request.min_vcpu {
            Some(min) => format!("{vcpu} vCPU ≥ {min}"),
            None => format!("{vcpu} vCPU"),
        });
    }
    if let Some(memory) = row.memory_mib {
        why.push(match request.min_memory_mib {
            Some(min) => format!("{memory} MiB memory ≥ {min} MiB"),
            None => format!("{memory} MiB memory"),
        });
    }
    if let Some(encapsulation) = row.encapsulation {
        why.push(format!("{encapsulation} encapsulation"));
    }
    if let Some(availability) = row.availability {
        why.push(match request.min_availability {
            Some(min) => {
                if min < 100.0 {
                    score += ((availability - min) / (100.0 - min)).clamp(0.0, 1.0);
                }
                format!("availability {availability} % ≥ {min} %")
            }
            None => format!("availability {availability} %"),
        });
    }
    match (&row.price, &request.max_price) {
        (Some(price), Some(max)) => {
            if max.amount > 0.0 {
                score += (1.0 - price.amount / max.amount).clamp(0.0, 1.0);
            } else {
                score += 1.0;
            }
            why.push(format!(
                "price {} {}/{} ≤ {}",
                price.amount,
                price.currency,
                unit_words(price),
                max.amount
            ));
        }
        (Some(price), None) => why.push(format!(
            "price {} {}/{}",
            price.amount,
            price.currency,
            unit_words(price)
        )),
        (None, _) => why.push("no price stated".into()),
    }
    (score, why)
}

fn price_amount(row: &MatchRow) -> f64 {
    row.price.as_ref().map_or(f64::INFINITY, |p| p.amount)
}

/// Ranks query rows: clouds for which `online` is false are left out (and
/// listed as such); each remaining service appears once, with its score
/// and explanation, in a deterministic order.
pub fn rank(rows: Vec<MatchRow>, request: &MatchRequest, online: &dyn Fn(&str) -> bool) -> Ranking {
    let mut best: BTreeMap<(String, String), (f64, MatchRow, Vec<String>)> = BTreeMap::new();
    let mut left_out: BTreeMap<String, LeftOut> = BTreeMap::new();
    for row in rows {
        if !online(&row.cloud_id) {
            left_out
                .entry(row.cloud_id.clone())
                .or_insert_with(|| LeftOut {
                    cloud_id: row.cloud_id.clone(),
                    reason: "offline".into(),
                });
            continue;
        }
        let (score, why) = score_and_explain(&row, request);
        let key = (row.cloud_id.clone(), row.service.clone());
        let better = match best.get(&key) {
            None => true,
            Some((kept_score, kept, _)) => score
                .total_cmp(kept_score)
                .then_with(|| price_amount(kept).total_cmp(&price_amount(&row)))
                .then_with(|| kept.offer.cmp(&row.offer))
                .is_gt(),
        };
        if better {
            best.insert(key, (score, row, why));
        }
    }
    let mut candidates: Vec<Candidate> = best
        .into_values()
        .map(|(score, row, mut explanation)| {
            explanation.push(format!("score {score:.3}"));
            Candidate {
                cloud_id: row.cloud_id,
                service: row.service,
                offer: row.offer,
                score,
                explanation,
            }
        })
        .collect();
    candidates.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.cloud_id.cmp(&b.cloud_id))
            .then_with(|| a.service.cmp(&b.service))
    });
    Ranking {
        candidates,
        left_out: left_out.into_values().collect(),
    }
}

impl Ranking {
    /// Explanation lines for everything left out, e.g. "cloud-b left out: offline".
    pub fn left_out_explanations(&self) -> Vec<String> {
        self.left_out.iter().map(ToString::to_string).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cloud: &str, replication: u32) -> MatchRow {
        MatchRow {
            cloud_id: cloud.into(),
            service: format!("https://{cloud}.lab/descriptor#storage"),
            offer: Some(format!("https://{cloud}.lab/descriptor#r{replication}")),
            country: "DE".into(),
            replication: Some(replication),
            ..MatchRow::default()
        }
    }

    #[test]
    fn ties_are_broken_by_cloud_id_and_each_service_appears_once() {
        let request = MatchRequest::new(ServiceKind::Storage);
        let rows = vec![row("cloud-z", 2), row("cloud-y", 2), row("cloud-y", 1)];
        let ranking = rank(rows.clone(), &request, &|_: &str| true);
        let order: Vec<_> = ranking
            .candidates
            .iter()
            .map(|c| (c.cloud_id.as_str(), c.offer.as_deref()))
            .collect();
        assert_eq!(
            order,
            [
                ("cloud-y", Some("https://cloud-y.lab/descriptor#r2")),
                ("cloud-z", Some("https://cloud-z.lab/descriptor#r2"))
            ]
        );
        let reversed = rank(rows.into_iter().rev().collect(), &request, &|_: &str| true);
        assert_eq!(reversed, ranking);
    }

    #[test]
    fn offline_clouds_are_listed_once() {
        let request = MatchRequest::new(ServiceKind::Storage);
        let rows = vec![row("cloud-b", 2), row("cloud-b", 3)];
        let ranking = rank(rows, &request, &|_: &str| false);
        assert!(ranking.candidates.is_empty());
        assert_eq!(
            ranking.left_out_explanations(),
            ["cloud-b left out: offline"]
        );
    }
}
