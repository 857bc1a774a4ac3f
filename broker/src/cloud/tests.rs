//! [`LocalCloud`] with the real `qemu-img`, in temporary directories.

use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::process::Command;

use tempfile::TempDir;

use super::*;

const MIB: u64 = 1024 * 1024;

fn spec(name: &str) -> InstanceSpec {
    InstanceSpec {
        name: name.to_owned(),
        vcpu: 2,
        memory_mib: 512,
        disk_bytes: 2 * MIB,
    }
}

fn open_cloud() -> (TempDir, LocalCloud) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cloud = LocalCloud::open(dir.path()).expect("opened");
    (dir, cloud)
}

/// A fresh, sound qcow2 disk of `spec("web-1")` in `dir/incoming/`.
fn incoming_disk(dir: &Path, file_name: &str) -> PathBuf {
    let incoming = dir.join("incoming");
    fs::create_dir_all(&incoming).expect("incoming dir");
    let path = incoming.join(file_name);
    QemuImg::default()
        .create(&path, 2 * MIB)
        .expect("qemu-img create");
    path
}

/// The descriptor of `spec` for the disk as it is on disk now.
fn descriptor_for(spec: &InstanceSpec, disk: &Path) -> String {
    ovf::generate(spec, "web-1.qcow2", file_len(disk).expect("stat"))
}

fn qemu_img(args: &[&str]) {
    let status = Command::new("qemu-img")
        .args(args)
        .status()
        .expect("qemu-img runs");
    assert!(status.success(), "qemu-img {args:?}: {status}");
}

fn read_u64_at(file: &mut File, offset: u64) -> u64 {
    let mut bytes = [0u8; 8];
    file.seek(SeekFrom::Start(offset)).expect("seek");
    file.read_exact(&mut bytes).expect("read");
    u64::from_be_bytes(bytes)
}

/// Marks cluster 4 of a fresh 64 KiB-cluster image as used though nothing
/// refers to it: a leak, which `qemu-img check` reports with exit status 3.
fn leak_a_cluster(path: &Path) {
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open");
    file.set_len(6 * 65536).expect("extend");
    // Header: refcount_table_offset at byte 48; its first entry is the
    // offset of the first refcount block, of 16-bit big-endian counts.
    let refcount_table = read_u64_at(&mut file, 48);
    let refcount_block = read_u64_at(&mut file, refcount_table);
    file.seek(SeekFrom::Start(refcount_block + 2 * 4))
        .expect("seek");
    file.write_all(&1u16.to_be_bytes()).expect("write");
}

#[test]
fn an_instance_migrates_from_one_cloud_to_another() {
    let (a_dir, a) = open_cloud();
    let created = a.create_instance(spec("web-1")).expect("created");
    assert_eq!(created.spec, spec("web-1"));
    assert_eq!(created.state, InstanceState::Running);
    assert_eq!(created.origin, None);
    let a_disk = a_dir.path().join("cloud/disks/web-1.qcow2");
    let info = QemuImg::default().info(&a_disk).expect("info");
    assert_eq!(
        (info.format.as_str(), info.virtual_size),
        ("qcow2", 2 * MIB)
    );
    assert!(a_dir.path().join("cloud/instances/web-1.json").is_file());
    assert_eq!(a.list().expect("listed"), vec![created.clone()]);
    assert_eq!(a.get("web-1").expect("read"), Some(created.clone()));
    assert_eq!(a.get("web-2").expect("read"), None);

    let migrating = a
        .set_state("web-1", InstanceState::Migrating)
        .expect("marked");
    assert_eq!(migrating.state, InstanceState::Migrating);
    let package = a.export("web-1").expect("exported");
    assert_eq!(package.instance, migrating);
    assert_eq!(package.disk_path, a_disk);
    assert_eq!(package.disk_size, file_len(&a_disk).expect("stat"));
    let described = ovf::parse(&package.ovf).expect("descriptor parses");
    assert_eq!(described.spec, spec("web-1"));
    assert_eq!(described.disk_file, "web-1.qcow2");
    assert_eq!(described.disk_file_size, package.disk_size);

    // The transfer: a copy lands in the destination's staging area.
    let (b_dir, b) = open_cloud();
    let staged = b_dir.path().join("web-1.qcow2.part");
    fs::copy(&package.disk_path, &staged).expect("copied");
    let plan = b.verify_package(&staged, &package.ovf).expect("verified");
    assert_eq!(
        plan,
        ImportPlan {
            spec: spec("web-1"),
            disk_size: package.disk_size,
            leaked_clusters: 0
        }
    );
    let imported = b.import(&plan, &staged, "cloud-a").expect("imported");
    assert_eq!(imported.spec, spec("web-1"));
    assert_eq!(imported.state, InstanceState::Running);
    assert_eq!(imported.origin.as_deref(), Some("cloud-a"));
    assert!(!staged.exists(), "the staged disk was moved");
    assert!(b_dir.path().join("cloud/disks/web-1.qcow2").is_file());
    let reopened = LocalCloud::open(b_dir.path()).expect("reopened");
    assert_eq!(reopened.list().expect("listed"), vec![imported]);

    a.release("web-1").expect("released");
    assert_eq!(a.list().expect("listed"), vec![]);
    assert_eq!(a.get("web-1").expect("read"), None);
    assert!(!a_disk.exists());
    let leftovers: Vec<_> = fs::read_dir(a_dir.path().join("cloud/instances"))
        .expect("ls")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn instances_are_listed_by_name_and_states_persist() {
    let (dir, cloud) = open_cloud();
    for name in ["db", "app-2", "app-10"] {
        cloud.create_instance(spec(name)).expect("created");
    }
    cloud
        .set_state("db", InstanceState::Migrating)
        .expect("marked");
    let reopened = LocalCloud::open(dir.path()).expect("reopened");
    let listed: Vec<_> = reopened
        .list()
        .expect("listed")
        .into_iter()
        .map(|i| (i.spec.name, i.state))
        .collect();
    assert_eq!(
        listed,
        [
            ("app-10".to_owned(), InstanceState::Running),
            ("app-2".to_owned(), InstanceState::Running),
            ("db".to_owned(), InstanceState::Migrating),
        ]
    );
    assert!(matches!(
        cloud.set_state("ghost", InstanceState::Running),
        Err(CloudError::NoSuchInstance { ref name }) if name == "ghost"
    ));
    assert!(matches!(
        cloud.export("ghost"),
        Err(CloudError::NoSuchInstance { .. })
    ));
}

#[test]
fn creation_refuses_bad_specs_and_taken_names() {
    let (dir, cloud) = open_cloud();
    let error = cloud.create_instance(spec("Web_1")).expect_err("bad name");
    assert!(matches!(
        error,
        CloudError::InvalidSpec(SpecError::Name { .. })
    ));
    assert_eq!(
        error.to_string(),
        "invalid instance: instance name \"Web_1\" is invalid: \
         it must start with a lowercase letter or a digit"
    );
    let too_small = InstanceSpec {
        memory_mib: 8,
        ..spec("web-1")
    };
    assert!(matches!(
        cloud.create_instance(too_small),
        Err(CloudError::InvalidSpec(SpecError::OutOfRange {
            field: "memory_mib",
            ..
        }))
    ));
    assert!(matches!(cloud.get("../x"), Err(CloudError::InvalidSpec(_))));

    cloud.create_instance(spec("web-1")).expect("created");
    let error = cloud.create_instance(spec("web-1")).expect_err("taken");
    assert!(matches!(error, CloudError::Exists { ref name } if name == "web-1"));
    assert_eq!(error.to_string(), "instance web-1 already exists");
    let disks: Vec<_> = fs::read_dir(dir.path().join("cloud/disks"))
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(disks, ["web-1.qcow2"]);
}

#[test]
fn verification_refuses_a_raw_disk() {
    let (dir, cloud) = open_cloud();
    let raw = dir.path().join("web-1.img");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "raw",
        raw.to_str().expect("utf-8"),
        "2M",
    ]);
    let error = cloud
        .verify_package(&raw, &descriptor_for(&spec("web-1"), &raw))
        .expect_err("raw refused");
    assert!(matches!(error, CloudError::NotQcow2 { ref format, .. } if format == "raw"));
    assert_eq!(
        error.to_string(),
        format!(
            "{} is not a qcow2 image: qemu-img says format raw",
            raw.display()
        )
    );
}

#[test]
fn verification_refuses_a_damaged_qcow2() {
    let (dir, cloud) = open_cloud();
    let no_magic = incoming_disk(dir.path(), "no-magic.qcow2");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .open(&no_magic)
        .expect("open");
    file.write_all(&[0; 4]).expect("magic overwritten");
    drop(file);
    let error = cloud
        .verify_package(&no_magic, &descriptor_for(&spec("web-1"), &no_magic))
        .expect_err("refused");
    assert!(
        matches!(error, CloudError::NotQcow2 { ref format, .. } if format == "raw"),
        "{error}"
    );

    let truncated = incoming_disk(dir.path(), "truncated.qcow2");
    File::options()
        .write(true)
        .open(&truncated)
        .and_then(|f| f.set_len(1000))
        .expect("truncated");
    let error = cloud
        .verify_package(&truncated, &descriptor_for(&spec("web-1"), &truncated))
        .expect_err("refused");
    match &error {
        CloudError::Damaged {
            path, corruptions, ..
        } => {
            assert_eq!(path, &truncated);
            assert!(*corruptions > 0);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        error
            .to_string()
            .contains("is damaged: qemu-img check found"),
        "{error}"
    );
}

#[test]
fn verification_accepts_leaked_clusters() {
    let (dir, cloud) = open_cloud();
    let leaky = incoming_disk(dir.path(), "leaky.qcow2");
    leak_a_cluster(&leaky);
    let plan = cloud
        .verify_package(&leaky, &descriptor_for(&spec("web-1"), &leaky))
        .expect("leaks only waste space");
    assert_eq!(plan.leaked_clusters, 1);
}

#[test]
fn verification_refuses_a_disk_that_reads_another_file() {
    let (dir, cloud) = open_cloud();
    let base = incoming_disk(dir.path(), "base.qcow2");
    let child = dir.path().join("incoming/child.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        base.to_str().expect("utf-8"),
        "-F",
        "qcow2",
        child.to_str().expect("utf-8"),
    ]);
    let error = cloud
        .verify_package(&child, &descriptor_for(&spec("web-1"), &child))
        .expect_err("refused");
    assert!(
        matches!(
            error,
            CloudError::ExternalFile { kind: "backing file", ref target, .. }
                if target == base.to_str().expect("utf-8")
        ),
        "{error}"
    );

    let with_data_file = dir.path().join("incoming/data.qcow2");
    let data_file = dir.path().join("incoming/data.raw");
    let options = format!("data_file={}", data_file.display());
    let image = with_data_file.to_str().expect("utf-8");
    qemu_img(&["create", "-q", "-f", "qcow2", "-o", &options, image, "2M"]);
    let error = cloud
        .verify_package(
            &with_data_file,
            &descriptor_for(&spec("web-1"), &with_data_file),
        )
        .expect_err("refused");
    assert!(
        matches!(
            error,
            CloudError::ExternalFile {
                kind: "external data file",
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .ends_with(": an imported disk must stand alone"),
        "{error}"
    );
}

#[test]
fn verification_refuses_a_descriptor_that_disagrees_with_the_disk() {
    let (dir, cloud) = open_cloud();
    let disk = incoming_disk(dir.path(), "web-1.qcow2");
    let bigger = InstanceSpec {
        disk_bytes: 4 * MIB,
        ..spec("web-1")
    };
    let error = cloud
        .verify_package(&disk, &descriptor_for(&bigger, &disk))
        .expect_err("refused");
    assert!(matches!(
        error,
        CloudError::CapacityMismatch {
            ovf: 4194304,
            qemu_img: 2097152
        }
    ));
    assert_eq!(
        error.to_string(),
        "OVF says the disk's capacity is 4194304 bytes, qemu-img says 2097152"
    );

    let len = file_len(&disk).expect("stat");
    let wrong_size = ovf::generate(&spec("web-1"), "web-1.qcow2", len + 1);
    let error = cloud
        .verify_package(&disk, &wrong_size)
        .expect_err("refused");
    assert!(matches!(
        error,
        CloudError::FileSizeMismatch { ovf, actual, .. } if ovf == len + 1 && actual == len
    ));
}

#[test]
fn verification_refuses_a_descriptor_that_does_not_parse() {
    let (dir, cloud) = open_cloud();
    let disk = incoming_disk(dir.path(), "web-1.qcow2");
    let error = cloud
        .verify_package(&disk, "<Envelope")
        .expect_err("refused");
    assert!(
        matches!(error, CloudError::Ovf(OvfError::NotXml(_))),
        "{error}"
    );
    assert!(
        error.to_string().starts_with("OVF: not well-formed XML: "),
        "{error}"
    );

    let good = descriptor_for(&spec("web-1"), &disk);
    let start = good.find("<VirtualSystem ").expect("present");
    let end = good.find("</VirtualSystem>").expect("present") + "</VirtualSystem>".len();
    let no_system = format!("{}{}", &good[..start], &good[end..]);
    let error = cloud
        .verify_package(&disk, &no_system)
        .expect_err("refused");
    assert_eq!(
        error.to_string(),
        "OVF: missing VirtualSystem (in Envelope)"
    );
}

#[test]
fn a_taken_name_is_refused_and_the_disk_stays_where_it_was() {
    let (dir, cloud) = open_cloud();
    let disk = incoming_disk(dir.path(), "web-1.qcow2");
    let descriptor = descriptor_for(&spec("web-1"), &disk);
    let plan = cloud.verify_package(&disk, &descriptor).expect("verified");

    cloud.create_instance(spec("web-1")).expect("created");
    assert!(matches!(
        cloud.verify_package(&disk, &descriptor),
        Err(CloudError::Exists { ref name }) if name == "web-1"
    ));
    let error = cloud
        .import(&plan, &disk, "cloud-a")
        .expect_err("name taken");
    assert!(matches!(error, CloudError::Exists { ref name } if name == "web-1"));
    assert!(disk.is_file(), "the incoming disk was not moved");
    let instance = cloud.get("web-1").expect("read").expect("still there");
    assert_eq!(instance.origin, None, "the local instance is untouched");
}

#[test]
fn import_refuses_a_disk_that_changed_since_verification() {
    let (dir, cloud) = open_cloud();
    let disk = incoming_disk(dir.path(), "web-1.qcow2");
    let plan = cloud
        .verify_package(&disk, &descriptor_for(&spec("web-1"), &disk))
        .expect("verified");
    File::options()
        .append(true)
        .open(&disk)
        .and_then(|mut f| f.write_all(b"more"))
        .expect("appended");
    assert!(matches!(
        cloud.import(&plan, &disk, "cloud-a"),
        Err(CloudError::FileSizeMismatch { .. })
    ));
    assert!(disk.is_file());
    assert_eq!(cloud.list().expect("listed"), vec![]);
}

#[test]
fn releasing_an_unknown_instance_is_refused() {
    let (_dir, cloud) = open_cloud();
    let error = cloud.release("ghost").expect_err("unknown");
    assert!(matches!(error, CloudError::NoSuchInstance { ref name } if name == "ghost"));
    assert_eq!(error.to_string(), "no instance named ghost");
    assert!(matches!(
        cloud.release("../ghost"),
        Err(CloudError::InvalidSpec(SpecError::Name { .. }))
    ));
}

/// A directory where the record's temporary file goes makes the record's
/// write fail (even for root, who ignores permissions).
fn block_record_write(dir: &Path, name: &str) {
    let tmp = dir.join(format!("cloud/instances/.{name}.json.tmp"));
    fs::create_dir_all(tmp.join("blocker")).expect("blocking directory");
}

#[test]
fn a_creation_whose_record_cannot_be_written_leaves_nothing() {
    let (dir, cloud) = open_cloud();
    block_record_write(dir.path(), "web-1");
    let error = cloud
        .create_instance(spec("web-1"))
        .expect_err("record write fails");
    assert!(
        matches!(error, CloudError::Io { op: "create", .. }),
        "{error}"
    );
    assert!(!dir.path().join("cloud/disks/web-1.qcow2").exists());
    assert_eq!(cloud.get("web-1").expect("read"), None);
}

#[test]
fn an_import_whose_record_cannot_be_written_gives_the_disk_back() {
    let (dir, cloud) = open_cloud();
    let disk = incoming_disk(dir.path(), "web-1.qcow2");
    let plan = cloud
        .verify_package(&disk, &descriptor_for(&spec("web-1"), &disk))
        .expect("verified");
    block_record_write(dir.path(), "web-1");
    let error = cloud
        .import(&plan, &disk, "cloud-a")
        .expect_err("record write fails");
    assert!(
        matches!(error, CloudError::Io { op: "create", .. }),
        "{error}"
    );
    assert!(disk.is_file(), "the disk is back where it was");
    assert!(!dir.path().join("cloud/disks/web-1.qcow2").exists());
    assert_eq!(cloud.get("web-1").expect("read"), None);
}

#[test]
fn opening_clears_what_an_interrupted_change_left() {
    let (dir, cloud) = open_cloud();
    cloud.create_instance(spec("web-1")).expect("created");
    let cloud_dir = dir.path().join("cloud");
    let leftovers = [
        cloud_dir.join("instances/.web-2.json.tmp"),
        cloud_dir.join("instances/.web-3.json.released"),
        cloud_dir.join("disks/web-3.qcow2"),
    ];
    let kept = cloud_dir.join("disks/notes.txt");
    for path in leftovers.iter().chain([&kept]) {
        fs::write(path, b"x").expect("planted");
    }
    let reopened = LocalCloud::open(dir.path()).expect("reopened");
    for path in &leftovers {
        assert!(!path.exists(), "{} deleted", path.display());
    }
    assert!(
        kept.exists(),
        "files that are not disks are not the cloud's"
    );
    assert!(cloud_dir.join("disks/web-1.qcow2").exists());
    let names: Vec<_> = reopened
        .list()
        .expect("listed")
        .into_iter()
        .map(|i| i.spec.name)
        .collect();
    assert_eq!(names, ["web-1"]);
}

#[test]
fn a_corrupt_record_is_named() {
    let (dir, cloud) = open_cloud();
    let record = dir.path().join("cloud/instances/web-1.json");
    fs::write(&record, b"{").expect("written");
    assert!(matches!(
        cloud.list(),
        Err(CloudError::CorruptRecord { ref path, .. }) if path == &record
    ));

    cloud.create_instance(spec("web-2")).expect("created");
    let other = fs::read(dir.path().join("cloud/instances/web-2.json")).expect("read");
    fs::write(&record, other).expect("copied");
    let error = cloud.get("web-1").expect_err("corrupt");
    assert_eq!(
        error.to_string(),
        format!(
            "instance record {} is corrupt: it names instance \"web-2\"",
            record.display()
        )
    );
}
