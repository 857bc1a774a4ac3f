//! The cloud driver's errors: [`SpecError`] (an instance's shape),
//! [`OvfError`] (a descriptor that does not describe one VM on one disk) and
//! [`CloudError`] (everything the driver refuses or fails at, naming the file).

use std::io;
use std::path::PathBuf;

/// An instance specification outside what this cloud runs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The name breaks one of the naming rules.
    #[error("instance name {name:?} is invalid: it {rule}")]
    Name {
        /// The name, shortened if long.
        name: String,
        /// The rule broken, as a verb phrase ("must start with …").
        rule: &'static str,
    },
    /// A quantity outside its bounds.
    #[error("{field} = {value} is out of range: it must be {min}..={max} ({bounds})")]
    OutOfRange {
        /// The field ("vcpu", "memory_mib", "disk_bytes").
        field: &'static str,
        /// The value given.
        value: u64,
        /// The least value allowed.
        min: u64,
        /// The greatest value allowed.
        max: u64,
        /// The bounds in words ("16 MiB to 4 TiB").
        bounds: &'static str,
    },
    /// A quantity that is not a whole number of units.
    #[error("{field} = {value} is not a multiple of {multiple}")]
    NotAMultiple {
        /// The field.
        field: &'static str,
        /// The value given.
        value: u64,
        /// The unit it must be a multiple of.
        multiple: u64,
    },
}

/// An OVF descriptor this cloud cannot import. Elements are named by their
/// path from the root (`Envelope/DiskSection/Disk`): the XML parser keeps no
/// line numbers.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OvfError {
    /// The descriptor is larger than any descriptor of one VM needs to be.
    #[error("the descriptor is {len} bytes, over the limit of {max} bytes")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not well-formed, namespace-correct XML.
    #[error("not well-formed XML: {0}")]
    NotXml(String),
    /// The root element is not an OVF 2 `Envelope`.
    #[error("the root element is {found}, expected Envelope in namespace {expected}")]
    WrongRoot {
        /// The root's `{namespace}name`.
        found: String,
        /// The OVF envelope namespace.
        expected: &'static str,
    },
    /// A required element is absent.
    #[error("missing {element} (in {parent})")]
    MissingElement {
        /// The element's path from the root.
        parent: String,
        /// The element looked for.
        element: &'static str,
    },
    /// An element that may appear once (or exactly once) appears otherwise.
    #[error("{parent} has {found} {element} elements, expected exactly one")]
    NotExactlyOne {
        /// The element's path from the root.
        parent: String,
        /// The element counted.
        element: &'static str,
        /// How many there are.
        found: usize,
    },
    /// A required attribute is absent.
    #[error("{element} has no {attribute} attribute")]
    MissingAttribute {
        /// The element's path from the root.
        element: String,
        /// The attribute (`ovf:capacity`).
        attribute: &'static str,
    },
    /// A value is not what the element or attribute holds.
    #[error("{at} = {value:?} {problem}")]
    BadValue {
        /// The element and attribute (`Envelope/References/File ovf:size`).
        at: String,
        /// The value found, shortened if long.
        value: String,
        /// What is wrong with it ("is not a decimal integer").
        problem: &'static str,
    },
    /// A reference that leads nowhere (a disk naming an unknown file, a
    /// hardware item naming an unknown disk).
    #[error("{at} = {value:?} refers to no {target}")]
    DanglingReference {
        /// The element and attribute that refers.
        at: String,
        /// The identifier, shortened if long.
        value: String,
        /// What it should name.
        target: &'static str,
    },
    /// The virtual system describes a VM this cloud does not run.
    #[error("VirtualSystem: {0}")]
    Spec(#[from] SpecError),
}

/// A failure or refusal of the local cloud driver.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CloudError {
    /// The instance specification is not acceptable.
    #[error("invalid instance: {0}")]
    InvalidSpec(#[from] SpecError),
    /// An instance of that name already exists here.
    #[error("instance {name} already exists")]
    Exists {
        /// The name.
        name: String,
    },
    /// No instance of that name exists here.
    #[error("no instance named {name}")]
    NoSuchInstance {
        /// The name.
        name: String,
    },
    /// A filesystem call failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done ("create", "fsync", …).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The system's error.
        #[source]
        source: io::Error,
    },
    /// A rename failed (for a disk to import, typically because it is not on
    /// the data directory's filesystem).
    #[error("cannot rename {} to {}: {source}", from.display(), to.display())]
    Rename {
        /// The file renamed.
        from: PathBuf,
        /// Its new name.
        to: PathBuf,
        /// The system's error.
        #[source]
        source: io::Error,
    },
    /// An instance record does not decode or contradicts its file name.
    #[error("instance record {} is corrupt: {detail}", path.display())]
    CorruptRecord {
        /// The record.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// `qemu-img` could not be started.
    #[error("cannot run `{command}`: {source}")]
    QemuImgSpawn {
        /// The command line.
        command: String,
        /// The system's error.
        #[source]
        source: io::Error,
    },
    /// `qemu-img` ended with a failure status.
    #[error("`{command}` failed ({status}): {stderr}")]
    QemuImgFailed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr, trimmed.
        stderr: String,
    },
    /// `qemu-img` printed something this driver cannot read.
    #[error("`{command}` printed output that does not decode: {detail}")]
    QemuImgOutput {
        /// The command line.
        command: String,
        /// Why it does not decode.
        detail: String,
    },
    /// The package's descriptor is refused.
    #[error("OVF: {0}")]
    Ovf(#[from] OvfError),
    /// The disk is not a qcow2 image.
    #[error("{} is not a qcow2 image: qemu-img says format {format}", path.display())]
    NotQcow2 {
        /// The disk.
        path: PathBuf,
        /// The format qemu-img detected.
        format: String,
    },
    /// The disk reads another file (a backing file or an external data
    /// file): importing it would let the sender choose a file on this host.
    #[error("{} refers to a {kind} {target:?}: an imported disk must stand alone", path.display())]
    ExternalFile {
        /// The disk.
        path: PathBuf,
        /// "backing file" or "external data file".
        kind: &'static str,
        /// The file it names.
        target: String,
    },
    /// `qemu-img check` found the image damaged.
    #[error(
        "{} is damaged: qemu-img check found {corruptions} corruptions and {check_errors} check errors",
        path.display()
    )]
    Damaged {
        /// The disk.
        path: PathBuf,
        /// Corrupted metadata found.
        corruptions: u64,
        /// Errors that kept the check from completing parts of its work.
        check_errors: u64,
    },
    /// The descriptor's disk capacity differs from the image's virtual size.
    #[error("OVF says the disk's capacity is {ovf} bytes, qemu-img says {qemu_img}")]
    CapacityMismatch {
        /// `Disk ovf:capacity`, in bytes.
        ovf: u64,
        /// The image's `virtual-size`.
        qemu_img: u64,
    },
    /// The descriptor's file size differs from the disk's length.
    #[error("OVF says the disk file is {ovf} bytes, {} is {actual} bytes", path.display())]
    FileSizeMismatch {
        /// The disk.
        path: PathBuf,
        /// `File ovf:size`.
        ovf: u64,
        /// The file's length.
        actual: u64,
    },
}

/// Wraps an I/O error with the operation and the path.
pub(super) fn io_error(
    op: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(io::Error) -> CloudError {
    let path = path.to_path_buf();
    move |source| CloudError::Io { op, path, source }
}

/// A bounded, printable excerpt of foreign text for error messages.
pub(super) fn snippet(text: &str) -> String {
    const MAX_CHARS: usize = 64;
    let mut out: String = text
        .chars()
        .take(MAX_CHARS)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    if text.chars().nth(MAX_CHARS).is_some() {
        out.push('…');
    }
    out
}
