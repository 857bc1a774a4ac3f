//! The service directory: each cloud's descriptor in its own named graph
//! (`<https://w3id.org/intercloud/cloud/{id}>`) of an oxigraph store on
//! RocksDB in `<data_dir>/directory`, and one publication record per cloud
//! in the record graph, written in the same transaction.
//!
//! A publication is parsed, validated against the federation's shapes and
//! checked against the caller's certificate before the store is touched;
//! the old graph, the new one and the record then change in one RocksDB
//! transaction, so a reader (or a root killed half-way) sees the old
//! descriptor or the new one, never a mix.
//!
//! Map: `record.rs` (the publication record ↔ triples), `publish.rs` (pure
//! version rules), `query.rs` (read-only SPARQL under limits), `formats.rs`
//! (answer formats and content negotiation).

pub mod formats;
pub mod publish;
pub mod query;
pub mod record;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use intercloud_ontology::descriptor::{self, DescriptorError, DescriptorFormat};
use intercloud_ontology::matching::{MatchError, MatchRequest, Ranking, match_in_store};
use intercloud_ontology::shacl::Shapes;
use oxigraph::model::dataset::{CanonicalizationAlgorithm, CanonicalizationHashAlgorithm};
use oxigraph::model::{GraphNameRef, NamedNodeRef, NamedOrBlankNodeRef, Term};
use oxigraph::sparql::CancellationToken;
use oxigraph::store::{StorageError, Store};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use tokio::sync::broadcast;

pub use formats::{AnswerFormat, Form, FormatError};
pub use publish::PublishRefusal;
pub use query::{Answer, QueryError, QueryLimits};
pub use record::{DescriptorInfo, RECORD_GRAPH, cloud_graph};

/// Most violations quoted in a refusal.
const VIOLATIONS_QUOTED: usize = 5;

/// Why a directory operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// The descriptor does not parse or is too large.
    #[error("{0}")]
    Descriptor(#[from] DescriptorError),
    /// The descriptor violates the shapes.
    #[error("the descriptor violates the federation's shapes ({count} violation{}): {quoted}", if *.count == 1 { "" } else { "s" })]
    Invalid {
        /// How many violations.
        count: usize,
        /// The first few, one per sentence.
        quoted: String,
    },
    /// The descriptor speaks for another cloud than the publisher's.
    #[error(
        "the descriptor describes {described}, but {caller} may publish only {allowed}'s descriptor"
    )]
    NotYours {
        /// The cloud the descriptor names.
        described: String,
        /// The caller's SPIFFE id.
        caller: String,
        /// The caller's cloud.
        allowed: String,
    },
    /// The version rules refuse it.
    #[error(transparent)]
    Refused(#[from] PublishRefusal),
    /// Nothing is published for that cloud.
    #[error("no descriptor is published for {0}")]
    NotPublished(String),
    /// A query failed.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// A match request is malformed, or matching failed.
    #[error(transparent)]
    Match(#[from] MatchError),
    /// The store failed.
    #[error("directory store: {0}")]
    Storage(#[from] StorageError),
}

/// What changed in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Published or withdrawn.
    pub kind: ChangeKind,
    /// The descriptor concerned (for a withdrawal, the one removed).
    pub info: DescriptorInfo,
    /// When.
    pub at: OffsetDateTime,
    /// For a withdrawal: why.
    pub reason: String,
}

/// The kind of a [`Change`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A descriptor was published (first, or a new version).
    Published,
    /// A descriptor was removed.
    Withdrawn,
}

/// The outcome of a publication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The descriptor now in force.
    pub info: DescriptorInfo,
    /// True when that exact version was already published.
    pub unchanged: bool,
}

/// Who publishes: the caller's cloud and SPIFFE id.
#[derive(Debug, Clone, Copy)]
pub struct Publisher<'a> {
    /// The cloud the caller's certificate names.
    pub cloud_id: &'a str,
    /// The caller's SPIFFE id.
    pub spiffe_id: &'a str,
}

/// The directory. Cheap to share behind an `Arc`; every method blocks on
/// the store, so async callers run them on the blocking pool.
pub struct Directory {
    store: Store,
    /// Serialises writers: the version check and the transaction are one step.
    writer: Mutex<()>,
    events: broadcast::Sender<Change>,
    limits: QueryLimits,
    /// One permit per query allowed to run at once.
    slots: Arc<tokio::sync::Semaphore>,
    /// The record graph, indexed by cloud id: read at open, updated after
    /// each commit (under `writer`), so lookups need not touch RocksDB.
    index: std::sync::RwLock<BTreeMap<String, DescriptorInfo>>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Directory {
    /// Opens (or creates) the store in `path`.
    pub fn open(path: &Path, limits: QueryLimits) -> Result<Self, DirectoryError> {
        Self::with_store(Store::open(path)?, limits)
    }

    /// A directory over an existing store (an in-memory one in tests).
    pub fn with_store(store: Store, limits: QueryLimits) -> Result<Self, DirectoryError> {
        let index = read_records(&store)?;
        let (events, _) = broadcast::channel(256);
        Ok(Self {
            store,
            writer: Mutex::new(()),
            events,
            limits,
            slots: Arc::new(tokio::sync::Semaphore::new(limits.max_concurrent.max(1))),
            index: std::sync::RwLock::new(index),
        })
    }

    fn index(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, DescriptorInfo>> {
        self.index
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn index_mut(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, DescriptorInfo>> {
        self.index
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The query limits.
    pub fn limits(&self) -> QueryLimits {
        self.limits
    }

    /// The underlying store, for benchmarks and tests.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Changes as they happen.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.events.subscribe()
    }

    /// Parses, validates and stores `input` as the publisher's descriptor.
    pub fn publish(
        &self,
        publisher: Publisher<'_>,
        input: &[u8],
        format: DescriptorFormat,
        now: OffsetDateTime,
    ) -> Result<Published, DirectoryError> {
        let descriptor = descriptor::parse(input, format)?;
        let report = Shapes::federation().validate(&descriptor.graph);
        if !report.conforms() {
            let violations = report.violations();
            return Err(DirectoryError::Invalid {
                count: violations.len(),
                quoted: violations
                    .iter()
                    .take(VIOLATIONS_QUOTED)
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            });
        }
        if descriptor.cloud_id != publisher.cloud_id {
            return Err(DirectoryError::NotYours {
                described: descriptor.cloud_id,
                caller: publisher.spiffe_id.to_owned(),
                allowed: publisher.cloud_id.to_owned(),
            });
        }
        let mut graph = descriptor.graph;
        graph.canonicalize(CanonicalizationAlgorithm::Rdfc10 {
            hash_algorithm: CanonicalizationHashAlgorithm::Sha256,
        });
        let digest = digest_of(&graph);
        let info = DescriptorInfo {
            cloud_id: descriptor.cloud_id,
            version: descriptor.version,
            triples: graph.len() as u64,
            digest,
            published_at: now,
            published_by: publisher.spiffe_id.to_owned(),
        };
        let _writer = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = self.record(&info.cloud_id);
        if publish::plan(current.as_ref(), info.version, &info.digest)?
            == publish::PublishPlan::Unchanged
        {
            return Ok(Published {
                info: current.unwrap_or(info),
                unchanged: true,
            });
        }
        let name = cloud_graph(&info.cloud_id);
        let mut transaction = self.store.start_transaction()?;
        transaction.remove_named_graph(NamedOrBlankNodeRef::NamedNode(name.as_ref()))?;
        remove_record(&mut transaction, &info.cloud_id)?;
        for triple in &graph {
            transaction.insert(triple.in_graph(GraphNameRef::NamedNode(name.as_ref())));
        }
        for quad in info.to_quads() {
            transaction.insert(&quad);
        }
        transaction.commit()?;
        self.index_mut().insert(info.cloud_id.clone(), info.clone());
        let _ = self.events.send(Change {
            kind: ChangeKind::Published,
            info: info.clone(),
            at: now,
            reason: String::new(),
        });
        Ok(Published {
            info,
            unchanged: false,
        })
    }

    /// Removes a cloud's descriptor; `reason` goes to watchers.
    pub fn withdraw(
        &self,
        cloud_id: &str,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<DescriptorInfo, DirectoryError> {
        let _writer = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let info = self
            .record(cloud_id)
            .ok_or_else(|| DirectoryError::NotPublished(cloud_id.to_owned()))?;
        let name = cloud_graph(cloud_id);
        let mut transaction = self.store.start_transaction()?;
        transaction.remove_named_graph(NamedOrBlankNodeRef::NamedNode(name.as_ref()))?;
        remove_record(&mut transaction, cloud_id)?;
        transaction.commit()?;
        self.index_mut().remove(cloud_id);
        let _ = self.events.send(Change {
            kind: ChangeKind::Withdrawn,
            info: info.clone(),
            at: now,
            reason: reason.to_owned(),
        });
        Ok(info)
    }

    /// The record of a cloud's descriptor, if published.
    pub fn record(&self, cloud_id: &str) -> Option<DescriptorInfo> {
        self.index().get(cloud_id).cloned()
    }

    /// Every published descriptor's record, by cloud id.
    pub fn records(&self) -> BTreeMap<String, DescriptorInfo> {
        self.index().clone()
    }

    /// How many descriptors are published.
    pub fn published(&self) -> usize {
        self.index().len()
    }

    /// A cloud's record and its graph as Turtle.
    pub fn get(&self, cloud_id: &str) -> Result<(DescriptorInfo, String), DirectoryError> {
        let info = self
            .record(cloud_id)
            .ok_or_else(|| DirectoryError::NotPublished(cloud_id.to_owned()))?;
        let name = cloud_graph(cloud_id);
        let mut turtle = Vec::new();
        self.store
            .dump_graph_to_writer(
                GraphNameRef::NamedNode(name.as_ref()),
                oxigraph::io::RdfSerializer::from_format(oxigraph::io::RdfFormat::Turtle)
                    .with_prefix("ic", intercloud_ontology::ONTOLOGY_NS)
                    .map_err(|e| StorageError::Other(Box::new(e)))?,
                &mut turtle,
            )
            .map_err(|e| StorageError::Other(Box::new(e)))?;
        Ok((info, String::from_utf8_lossy(&turtle).into_owned()))
    }

    /// Parses a query (refusing updates) so the caller can pick a format
    /// for its form before running it.
    pub fn parse_query(&self, text: &str) -> Result<query::ParsedQuery, DirectoryError> {
        Ok(query::parse(text)?)
    }

    /// Runs a parsed query; `cancel` is cancelled by the caller at the
    /// deadline.
    pub fn run_query(
        &self,
        parsed: query::ParsedQuery,
        format: AnswerFormat,
        cancel: CancellationToken,
    ) -> Result<Answer, DirectoryError> {
        Ok(query::run(
            &self.store,
            parsed,
            format,
            self.limits,
            cancel,
        )?)
    }

    /// Ranked candidates for `request`; clouds for which `online` is false
    /// are left out.
    pub fn matching(
        &self,
        request: &MatchRequest,
        online: &dyn Fn(&str) -> bool,
    ) -> Result<Ranking, DirectoryError> {
        Ok(match_in_store(&self.store, request, online)?)
    }
}

/// Runs `parsed` on the blocking pool and answers [`QueryError::Timeout`]
/// at the directory's deadline (waiting for a query slot included). The
/// evaluation is then cancelled; oxigraph notices between steps, which in a
/// large join can take seconds, so the query keeps its slot until it has
/// really stopped: at most `max_concurrent` queries burn CPU at once.
pub async fn query_with_deadline(
    directory: Arc<Directory>,
    parsed: query::ParsedQuery,
    format: AnswerFormat,
) -> Result<Answer, DirectoryError> {
    let timeout = directory.limits().timeout;
    let deadline = tokio::time::Instant::now() + timeout;
    let timed_out = || DirectoryError::Query(QueryError::Timeout(timeout));
    let permit = tokio::time::timeout_at(deadline, directory.slots.clone().acquire_owned())
        .await
        .map_err(|_| timed_out())?
        .map_err(|_| {
            DirectoryError::Query(QueryError::Evaluation(
                "the directory is shutting down".into(),
            ))
        })?;
    let cancel = CancellationToken::new();
    let task = {
        let cancel = cancel.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            directory.run_query(parsed, format, cancel)
        })
    };
    match tokio::time::timeout_at(deadline, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(DirectoryError::Query(QueryError::Evaluation(format!(
            "query task failed: {e}"
        )))),
        Err(_) => {
            cancel.cancel();
            Err(timed_out())
        }
    }
}

/// Reads the record graph (at open: afterwards the index is kept in step).
fn read_records(store: &Store) -> Result<BTreeMap<String, DescriptorInfo>, StorageError> {
    let record_graph = NamedNodeRef::new_unchecked(RECORD_GRAPH);
    let mut by_subject: BTreeMap<String, Vec<(oxigraph::model::NamedNode, Term)>> = BTreeMap::new();
    for quad in store.quads_for_pattern(None, None, None, Some(record_graph.into())) {
        let quad = quad?;
        by_subject
            .entry(quad.subject.to_string())
            .or_default()
            .push((quad.predicate, quad.object));
    }
    Ok(by_subject
        .values()
        .filter_map(|pairs| DescriptorInfo::from_pairs(pairs.iter().map(|(p, o)| (p.as_ref(), o))))
        .map(|info| (info.cloud_id.clone(), info))
        .collect())
}

fn remove_record(
    transaction: &mut oxigraph::store::Transaction<'_>,
    cloud_id: &str,
) -> Result<(), StorageError> {
    let subject = cloud_graph(cloud_id);
    let record_graph = NamedNodeRef::new_unchecked(RECORD_GRAPH);
    let old = transaction
        .quads_for_pattern(
            Some(subject.as_ref().into()),
            None,
            None,
            Some(record_graph.into()),
        )
        .collect::<Result<Vec<_>, _>>()?;
    for quad in &old {
        transaction.remove(quad);
    }
    Ok(())
}

/// SHA-256 over the sorted N-Triples lines of a canonicalised graph.
fn digest_of(graph: &oxigraph::model::Graph) -> String {
    let mut lines: Vec<String> = graph.iter().map(|t| format!("{t} .\n")).collect();
    lines.sort_unstable();
    let mut hasher = Sha256::new();
    for line in &lines {
        hasher.update(line.as_bytes());
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use intercloud_ontology::matching::ServiceKind;

    use super::*;

    const LIMITS: QueryLimits = QueryLimits {
        timeout: Duration::from_secs(5),
        max_results: 1000,
        max_bytes: 1 << 20,
        max_concurrent: 2,
    };

    fn example(name: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../ontology/examples")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn publisher(cloud_id: &str) -> (String, String) {
        (
            cloud_id.to_owned(),
            format!("spiffe://intercloud.lab/cloud/{cloud_id}"),
        )
    }

    fn publish(
        directory: &Directory,
        cloud_id: &str,
        bytes: &[u8],
    ) -> Result<Published, DirectoryError> {
        let (cloud, spiffe) = publisher(cloud_id);
        directory.publish(
            Publisher {
                cloud_id: &cloud,
                spiffe_id: &spiffe,
            },
            bytes,
            DescriptorFormat::Turtle,
            OffsetDateTime::now_utc(),
        )
    }

    fn bumped(bytes: &[u8], from: u64, to: u64) -> Vec<u8> {
        let text = String::from_utf8(bytes.to_vec()).expect("utf8");
        let old = format!("ic:descriptorVersion {from}");
        assert!(text.contains(&old), "the example states {old}");
        text.replace(&old, &format!("ic:descriptorVersion {to}"))
            .into_bytes()
    }

    fn version_of(bytes: &[u8]) -> u64 {
        descriptor::parse(bytes, DescriptorFormat::Turtle)
            .expect("parse")
            .version
    }

    #[test]
    fn a_publication_fills_the_cloud_graph_and_its_record_together() {
        let directory =
            Directory::with_store(Store::new().expect("store"), LIMITS).expect("directory");
        let mut events = directory.subscribe();
        let a = example("cloud-a.ttl");
        let published = publish(&directory, "cloud-a", &a).expect("publish");
        assert!(!published.unchanged);
        assert!(published.info.triples > 20, "{:?}", published.info);
        let name = cloud_graph("cloud-a");
        let in_graph = directory
            .store()
            .quads_for_pattern(
                None,
                None,
                None,
                Some(GraphNameRef::NamedNode(name.as_ref())),
            )
            .count() as u64;
        assert_eq!(in_graph, published.info.triples);
        assert_eq!(directory.record("cloud-a"), Some(published.info.clone()));
        let change = events.try_recv().expect("event");
        assert_eq!(
            (change.kind, change.info),
            (ChangeKind::Published, published.info)
        );
    }

    #[test]
    fn publishing_the_same_version_again_changes_nothing_and_stays_silent() {
        let directory =
            Directory::with_store(Store::new().expect("store"), LIMITS).expect("directory");
        let a = example("cloud-a.ttl");
        let first = publish(&directory, "cloud-a", &a).expect("publish");
        let mut events = directory.subscribe();
        let again = publish(&directory, "cloud-a", &a).expect("again");
        assert!(again.unchanged);
        assert_eq!(
            again.info, first.info,
            "the first publication's record stands"
        );
        assert!(events.try_recv().is_err());
    }

    #[test]
    fn a_new_version_replaces_the_whole_graph() {
        let directory =
            Directory::with_store(Store::new().expect("store"), LIMITS).expect("directory");
        let a = example("cloud-a.ttl");
        let v = version_of(&a);
        publish(&directory, "cloud-a", &a).expect("publish");
        let b_as_a = example("cloud-b.ttl");
        // cloud-b's services under cloud-a's identity, as a new version.
        let text = String::from_utf8(b_as_a)
            .expect("utf8")
            .replace("\"cloud-b\"", "\"cloud-a\"");
        let replaced = publish(
            &directory,
            "cloud-a",
            &bumped(text.as_bytes(), version_of(text.as_bytes()), v + 1),
        )
        .expect("replace");
        let name = cloud_graph("cloud-a");
        let in_graph = directory
            .store()
            .quads_for_pattern(
                None,
                None,
                None,
                Some(GraphNameRef::NamedNode(name.as_ref())),
            )
            .count() as u64;
        assert_eq!(
            in_graph, replaced.info.triples,
            "nothing of the old graph is left"
        );
        assert_eq!(replaced.info.version, v + 1);
    }

    #[test]
    fn stale_and_silently_changed_versions_are_refused_and_leave_the_graph() {
        let directory =
            Directory::with_store(Store::new().expect("store"), LIMITS).expect("directory");
        let a = example("cloud-a.ttl");
        let v = version_of(&a);
        let first = publish(&directory, "cloud-a", &bumped(&a, v, v + 2)).expect("publish");
        let error = publish(&directory, "cloud-a", &a).expect_err("stale");
        assert!(
            matches!(error, DirectoryError::Refused(PublishRefusal::Stale { .. })),
            "{error}"
        );
        let changed = String::from_utf8(bumped(&a, v, v + 2))
            .expect("utf8")
            .replace("99.9", "99.5");
        let error = publish(&directory, "cloud-a", changed.as_bytes()).expect_err("same version");
        assert!(
            matches!(
                error,
                DirectoryError::Refused(PublishRefusal::SameVersionChanged { .. })
            ),
            "{error}"
        );
        assert_eq!(directory.record("cloud-a"), Some(first.info));
    }

    #[test]
    fn a_descriptor_of_another_cloud_is_refused() {
        let directory =
            Directory::with_store(Store::new().expect("store"), LIMITS).expect("directory");
        let error = publish(&directory, "cloud-a", &example("cloud-b.ttl")).expect_err("not yours");
        assert_eq!(
            error.to_string(),
            "the descriptor describes cloud-b, but spiffe://intercloud.lab/cloud/cloud-a may publish only cloud-a's descriptor"
        );
        assert!(directory.records().is_empty());
    }

    #[test]
    fn invalid_descriptors_are_refused_with_their_violations() {
        let directory =
            Directory::with_store(Store::new().expect("store"), LIMITS).expect("directory");
        let error = publish(
            &directory,
            "cloud-a",
            &example("invalid-replication-zero.ttl"),
        )
        .expect_err("invalid");
        assert!(matches!(error, DirectoryError::Invalid { .. }), "{error}");
        assert!(error.to_string().contains("replicationFactor"), "{error}");
        let error =
            publish(&directory, "cloud-a", &example("invalid-syntax.ttl")).expect_err("syntax");
        assert!(error.to_string().contains("line 29"), "{error}");
        assert!(directory.records().is_empty());
    }

    #[test]
    fn withdrawing_removes_graph_and_record() {
        let directory =
            Directory::with_store(Store::new().expect("store"), LIMITS).expect("directory");
        publish(&directory, "cloud-a", &example("cloud-a.ttl")).expect("publish");
        publish(&directory, "cloud-b", &example("cloud-b.ttl")).expect("publish");
        let removed = directory
            .withdraw("cloud-a", "test", OffsetDateTime::now_utc())
            .expect("withdraw");
        assert_eq!(removed.cloud_id, "cloud-a");
        assert_eq!(directory.records().keys().collect::<Vec<_>>(), ["cloud-b"]);
        let name = cloud_graph("cloud-a");
        assert_eq!(
            directory
                .store()
                .quads_for_pattern(
                    None,
                    None,
                    None,
                    Some(GraphNameRef::NamedNode(name.as_ref()))
                )
                .count(),
            0
        );
        assert!(matches!(
            directory.withdraw("cloud-a", "again", OffsetDateTime::now_utc()),
            Err(DirectoryError::NotPublished(_))
        ));
    }

    #[test]
    fn the_index_is_read_back_when_the_store_is_opened_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let published = {
            let directory = Directory::open(dir.path(), LIMITS).expect("open");
            publish(&directory, "cloud-a", &example("cloud-a.ttl")).expect("publish")
        };
        let directory = Directory::open(dir.path(), LIMITS).expect("reopen");
        assert_eq!(directory.record("cloud-a"), Some(published.info));
        assert_eq!(directory.published(), 1);
    }

    #[test]
    fn get_returns_turtle_that_parses_back_to_the_same_graph() {
        let directory =
            Directory::with_store(Store::new().expect("store"), LIMITS).expect("directory");
        let published = publish(&directory, "cloud-c", &example("cloud-c.ttl")).expect("publish");
        let (info, turtle) = directory.get("cloud-c").expect("get");
        assert_eq!(info, published.info);
        let again = descriptor::parse(turtle.as_bytes(), DescriptorFormat::Turtle).expect("parse");
        assert_eq!(again.graph.len() as u64, info.triples);
        assert!(matches!(
            directory.get("cloud-z"),
            Err(DirectoryError::NotPublished(_))
        ));
    }

    #[test]
    fn matching_runs_over_the_published_graphs() {
        let directory =
            Directory::with_store(Store::new().expect("store"), LIMITS).expect("directory");
        for cloud in ["cloud-a", "cloud-b", "cloud-c"] {
            publish(&directory, cloud, &example(&format!("{cloud}.ttl"))).expect("publish");
        }
        let request = MatchRequest::new(ServiceKind::Storage);
        let all = directory.matching(&request, &|_| true).expect("match");
        assert!(!all.candidates.is_empty());
        let none = directory.matching(&request, &|_| false).expect("match");
        assert!(none.candidates.is_empty());
        assert!(!none.left_out.is_empty());
    }
}
