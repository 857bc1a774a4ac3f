//! `intercloudctl match`: candidates best first, each with the reasons it
//! matched, then the clouds left out and why.

use intercloud_proto::v1 as pb;
use serde::Serialize;
use time::OffsetDateTime;

use super::Render;
use super::iri::{relative_to, short};
use super::table::{Table, one_line};

/// One matching service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// 1 for the best.
    pub rank: usize,
    pub cloud_id: String,
    /// IRI of the service.
    pub service: String,
    /// IRI of the storage class or VM flavor that matched; empty if none.
    pub offer: String,
    /// Higher is better.
    pub score: f64,
    pub online: bool,
    pub descriptor_version: u64,
    /// One sentence per criterion.
    pub explanation: Vec<String>,
}

/// A cloud that is not among the candidates, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeftOut {
    pub cloud_id: String,
    pub reason: String,
}

/// The root's answer to a match.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatchResult {
    /// Best first.
    pub candidates: Vec<Candidate>,
    pub left_out: Vec<LeftOut>,
    /// The SPARQL the constraints became.
    pub query: String,
    /// Descriptors in the directory when the match ran.
    pub clouds_considered: u32,
}

impl From<&pb::MatchResponse> for MatchResult {
    fn from(response: &pb::MatchResponse) -> Self {
        Self {
            candidates: response
                .candidates
                .iter()
                .enumerate()
                .map(|(i, c)| Candidate {
                    rank: i + 1,
                    cloud_id: c.cloud_id.clone(),
                    service: c.service.clone(),
                    offer: c.offer.clone(),
                    score: c.score,
                    online: c.online,
                    descriptor_version: c.descriptor_version,
                    explanation: c.explanation.clone(),
                })
                .collect(),
            left_out: response
                .left_out
                .iter()
                .map(|l| LeftOut {
                    cloud_id: l.cloud_id.clone(),
                    reason: l.reason.clone(),
                })
                .collect(),
            query: response.query.clone(),
            clouds_considered: response.clouds_considered,
        }
    }
}

impl MatchResult {
    /// Whether anything matched.
    pub fn found(&self) -> bool {
        !self.candidates.is_empty()
    }
}

fn clouds(n: u32) -> String {
    if n == 1 {
        "1 cloud".to_owned()
    } else {
        format!("{n} clouds")
    }
}

impl Render for MatchResult {
    fn table(&self, _now: OffsetDateTime) -> String {
        let considered = clouds(self.clouds_considered);
        let mut out = match self.candidates.len() {
            0 => format!("no candidate among {considered}\n"),
            1 => format!("1 candidate among {considered}\n"),
            n => format!("{n} candidates among {considered}\n"),
        };
        if self.found() {
            let mut table = Table::new(&["RANK", "CLOUD", "SERVICE", "OFFER", "SCORE", "ONLINE"]);
            for c in &self.candidates {
                table.row(vec![
                    c.rank.to_string(),
                    c.cloud_id.clone(),
                    short(&c.service),
                    if c.offer.is_empty() {
                        String::new()
                    } else {
                        relative_to(&c.offer, &c.service)
                    },
                    format!("{:.2}", c.score),
                    if c.online { "yes" } else { "no" }.to_owned(),
                ]);
            }
            // Explanations go under their candidate, starting at the CLOUD column.
            let rank_width = "RANK".len().max(self.candidates.len().to_string().len());
            let indent = " ".repeat(rank_width + 3);
            let rendered = table.render();
            let mut lines = rendered.lines();
            if let Some(header) = lines.next() {
                out.push_str(header);
                out.push('\n');
            }
            for (line, c) in lines.zip(&self.candidates) {
                out.push_str(line);
                out.push('\n');
                for sentence in &c.explanation {
                    out.push_str(&format!("{indent}- {}\n", one_line(sentence)));
                }
            }
        }
        if !self.left_out.is_empty() {
            out.push_str("left out:\n");
            let width = self
                .left_out
                .iter()
                .map(|l| one_line(&l.cloud_id).chars().count())
                .max()
                .unwrap_or(0);
            for l in &self.left_out {
                let cloud = one_line(&l.cloud_id);
                let pad = " ".repeat(width - cloud.chars().count());
                out.push_str(&format!("  {cloud}{pad}   {}\n", one_line(&l.reason)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    fn response() -> pb::MatchResponse {
        pb::MatchResponse {
            candidates: vec![
                pb::MatchCandidate {
                    cloud_id: "cloud-a".into(),
                    service: "https://cloud-a.lab/descriptor#objectStorage".into(),
                    offer: "https://cloud-a.lab/descriptor#standard".into(),
                    score: 1.2857,
                    explanation: vec![
                        "replication 3 meets the minimum of 3".into(),
                        "region DE is in EU".into(),
                    ],
                    online: true,
                    descriptor_version: 3,
                },
                pb::MatchCandidate {
                    cloud_id: "cloud-b".into(),
                    service: "https://w3id.org/intercloud/cloud/cloud-b#storage".into(),
                    offer: String::new(),
                    score: 0.5,
                    explanation: vec!["price 0.02 EUR is within\n0.03 EUR".into()],
                    online: false,
                    descriptor_version: 1,
                },
            ],
            left_out: vec![
                pb::LeftOutCloud {
                    cloud_id: "cloud-c".into(),
                    reason: "offline: no heartbeat since 2026-05-01T09:00:00Z".into(),
                },
                pb::LeftOutCloud {
                    cloud_id: "cloud-long".into(),
                    reason: "revoked".into(),
                },
            ],
            query: "SELECT * WHERE { ?s ?p ?o }".into(),
            clouds_considered: 4,
        }
    }

    #[test]
    fn json_has_ranked_candidates_with_explanations() {
        let view = MatchResult::from(&response());
        assert!(view.found());
        let json = serde_json::to_value(&view).expect("json");
        assert_eq!(
            json["candidates"][0],
            json!({
                "rank": 1,
                "cloud_id": "cloud-a",
                "service": "https://cloud-a.lab/descriptor#objectStorage",
                "offer": "https://cloud-a.lab/descriptor#standard",
                "score": 1.2857,
                "online": true,
                "descriptor_version": 3,
                "explanation": [
                    "replication 3 meets the minimum of 3",
                    "region DE is in EU"
                ],
            })
        );
        assert_eq!(json["candidates"][1]["rank"], 2);
        assert_eq!(json["candidates"][1]["offer"], "");
        assert_eq!(
            json["left_out"][0],
            json!({"cloud_id": "cloud-c", "reason": "offline: no heartbeat since 2026-05-01T09:00:00Z"})
        );
        assert_eq!(json["query"], "SELECT * WHERE { ?s ?p ?o }");
        assert_eq!(json["clouds_considered"], 4);
        assert_eq!(json.as_object().expect("object").len(), 4);
    }

    #[test]
    fn table_puts_explanations_under_their_candidate_then_the_left_out() {
        let text = MatchResult::from(&response()).table(datetime!(2026-05-01 10:00:00 UTC));
        assert_eq!(
            text,
            "2 candidates among 4 clouds\n\
             RANK   CLOUD     SERVICE                                        OFFER       SCORE   ONLINE\n\
             1      cloud-a   https://cloud-a.lab/descriptor#objectStorage   #standard   1.29    yes\n\
             \x20      - replication 3 meets the minimum of 3\n\
             \x20      - region DE is in EU\n\
             2      cloud-b   cloud:cloud-b#storage                          -           0.50    no\n\
             \x20      - price 0.02 EUR is within 0.03 EUR\n\
             left out:\n\
             \x20 cloud-c      offline: no heartbeat since 2026-05-01T09:00:00Z\n\
             \x20 cloud-long   revoked\n"
        );
    }

    #[test]
    fn no_candidate_says_so_and_still_lists_the_left_out() {
        let mut response = response();
        response.candidates.clear();
        response.left_out.truncate(1);
        response.clouds_considered = 1;
        let view = MatchResult::from(&response);
        assert!(!view.found());
        assert_eq!(
            view.table(datetime!(2026-05-01 10:00:00 UTC)),
            "no candidate among 1 cloud\n\
             left out:\n\
             \x20 cloud-c   offline: no heartbeat since 2026-05-01T09:00:00Z\n"
        );
        let json = serde_json::to_value(&view).expect("json");
        assert_eq!(json["candidates"], json!([]));
    }
}
