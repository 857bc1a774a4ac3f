//! OVF 2.0 descriptors of one VM on one qcow2 disk (pure: text in, text out).
//!
//! [`generate`] writes the descriptor a migration ships beside the disk;
//! [`parse`] reads one back, strictly: it comes from another cloud, so
//! anything this cloud cannot honour exactly (a second disk, a disk in another
//! format, a file reference that is a path) is refused rather than guessed at.
//! Attributes are matched by namespace, not by prefix, so `ovf:` and `rasd:`
//! may be bound to any prefix.

use minidom::Element;

use super::error::{OvfError, snippet};
use super::instance::InstanceSpec;

/// The OVF 2 envelope namespace.
pub const OVF_NS: &str = "http://schemas.dmtf.org/ovf/envelope/2";
/// The CIM resource allocation namespace of hardware items.
pub const RASD_NS: &str =
    "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData";
/// The disk format URI of qcow2.
pub const QCOW2_FORMAT: &str = "http://www.gnu.org/software/qemu/qcow2";
/// The largest descriptor accepted; one VM's needs a few kilobytes.
pub const MAX_DESCRIPTOR_BYTES: usize = 1024 * 1024;

const FILE_ID: &str = "file1";
const DISK_ID: &str = "disk1";
const MIB: u64 = 1024 * 1024;
const CPU: (u64, &str) = (3, "Item with rasd:ResourceType 3 (CPU)");
const MEMORY: (u64, &str) = (4, "Item with rasd:ResourceType 4 (memory)");
const DISK_DRIVE: (u64, &str) = (17, "Item with rasd:ResourceType 17 (disk drive)");

const REFERENCES: &str = "Envelope/References";
const FILE: &str = "Envelope/References/File";
const DISK_SECTION: &str = "Envelope/DiskSection";
const DISK: &str = "Envelope/DiskSection/Disk";
const SYSTEM: &str = "Envelope/VirtualSystem";
const HARDWARE: &str = "Envelope/VirtualSystem/VirtualHardwareSection";

/// What a descriptor says of the VM and its disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OvfPackage {
    /// The VM (its disk size is the disk's capacity).
    pub spec: InstanceSpec,
    /// The disk file's name (`File ovf:href`), a plain file name.
    pub disk_file: String,
    /// The disk file's length in bytes (`File ovf:size`).
    pub disk_file_size: u64,
    /// The disk's virtual size in bytes (`Disk ovf:capacity`).
    pub disk_capacity: u64,
}

/// The descriptor of `spec` on the qcow2 file `disk_file_name` of
/// `disk_file_size` bytes.
pub fn generate(spec: &InstanceSpec, disk_file_name: &str, disk_file_size: u64) -> String {
    let name = escape(&spec.name);
    let file = escape(disk_file_name);
    let InstanceSpec {
        vcpu,
        memory_mib,
        disk_bytes,
        ..
    } = spec;
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="{OVF_NS}" xmlns:ovf="{OVF_NS}" xmlns:rasd="{RASD_NS}">
  <References>
    <File ovf:id="{FILE_ID}" ovf:href="{file}" ovf:size="{disk_file_size}"/>
  </References>
  <DiskSection>
    <Info>Virtual disks</Info>
    <Disk ovf:diskId="{DISK_ID}" ovf:fileRef="{FILE_ID}" ovf:capacity="{disk_bytes}" ovf:capacityAllocationUnits="byte" ovf:format="{QCOW2_FORMAT}"/>
  </DiskSection>
  <VirtualSystem ovf:id="{name}">
    <Info>An Intercloud instance</Info>
    <Name>{name}</Name>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <Item>
        <rasd:ElementName>{vcpu} virtual CPUs</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>{vcpu}</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:ElementName>{memory_mib} MiB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>{memory_mib}</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:ElementName>Disk 1</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/{DISK_ID}</rasd:HostResource>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
"#
    )
}

/// Reads a descriptor of one VM on one qcow2 disk; the VM must be one this
/// cloud runs ([`InstanceSpec::validate`]).
pub fn parse(xml: &str) -> Result<OvfPackage, OvfError> {
    if xml.len() > MAX_DESCRIPTOR_BYTES {
        return Err(OvfError::TooLarge {
            len: xml.len(),
            max: MAX_DESCRIPTOR_BYTES,
        });
    }
    let envelope: Element = xml
        .parse()
        .map_err(|e: minidom::Error| OvfError::NotXml(e.to_string()))?;
    if !envelope.is("Envelope", OVF_NS) {
        return Err(OvfError::WrongRoot {
            found: format!(
                "{{{}}}{}",
                snippet(&envelope.ns()),
                snippet(envelope.name())
            ),
            expected: OVF_NS,
        });
    }

    let references = required_child(&envelope, "Envelope", "References")?;
    let file = exactly_one(references, REFERENCES, "File")?;
    let file_id = ovf_attribute(file, FILE, "ovf:id")?;
    let disk_file = ovf_attribute(file, FILE, "ovf:href")?;
    if !is_plain_file_name(disk_file) {
        return Err(bad_value(
            FILE,
            "ovf:href",
            disk_file,
            "is not a plain file name (no '/', '\\', ':', '..' or control characters)",
        ));
    }
    let disk_file_size = number(FILE, "ovf:size", ovf_attribute(file, FILE, "ovf:size")?)?;

    let disk_section = required_child(&envelope, "Envelope", "DiskSection")?;
    let disk = exactly_one(disk_section, DISK_SECTION, "Disk")?;
    let disk_id = ovf_attribute(disk, DISK, "ovf:diskId")?;
    let file_ref = ovf_attribute(disk, DISK, "ovf:fileRef")?;
    if file_ref != file_id {
        return Err(OvfError::DanglingReference {
            at: format!("{DISK} ovf:fileRef"),
            value: snippet(file_ref),
            target: "File in Envelope/References",
        });
    }
    let format = ovf_attribute(disk, DISK, "ovf:format")?;
    if format != QCOW2_FORMAT {
        return Err(bad_value(
            DISK,
            "ovf:format",
            format,
            "is not the qcow2 format (http://www.gnu.org/software/qemu/qcow2)",
        ));
    }
    let capacity = number(
        DISK,
        "ovf:capacity",
        ovf_attribute(disk, DISK, "ovf:capacity")?,
    )?;
    let capacity_unit = match disk.attr_ns(OVF_NS, "capacityAllocationUnits") {
        // OVF's default unit for a capacity is the byte.
        None => 1,
        Some(units) => unit_in_bytes(units)
            .ok_or_else(|| bad_value(DISK, "ovf:capacityAllocationUnits", units, UNITS_PROBLEM))?,
    };
    let disk_capacity = capacity
        .checked_mul(capacity_unit)
        .ok_or_else(|| bad_value(DISK, "ovf:capacity", &capacity.to_string(), OVERFLOW))?;

    let system = required_child(&envelope, "Envelope", "VirtualSystem")?;
    let name = ovf_attribute(system, SYSTEM, "ovf:id")?;
    let hardware = required_child(system, SYSTEM, "VirtualHardwareSection")?;
    let vcpu_quantity = virtual_quantity(hardware_item(hardware, CPU)?, CPU.1)?;
    let vcpu = u32::try_from(vcpu_quantity).map_err(|_| {
        bad_value(
            CPU.1,
            "rasd:VirtualQuantity",
            &vcpu_quantity.to_string(),
            OVERFLOW,
        )
    })?;
    let memory_mib = memory_mib(hardware_item(hardware, MEMORY)?)?;
    let drive = hardware_item(hardware, DISK_DRIVE)?;
    let host_resource = rasd_text(drive, DISK_DRIVE.1, "HostResource", "rasd:HostResource")?;
    let named_disk = host_resource
        .strip_prefix("ovf:/disk/")
        .or_else(|| host_resource.strip_prefix("/disk/"));
    if named_disk != Some(disk_id) {
        return Err(OvfError::DanglingReference {
            at: format!("{} rasd:HostResource", DISK_DRIVE.1),
            value: snippet(&host_resource),
            target: "Disk in Envelope/DiskSection (expected ovf:/disk/<diskId>)",
        });
    }

    let spec = InstanceSpec {
        name: name.to_owned(),
        vcpu,
        memory_mib,
        disk_bytes: disk_capacity,
    };
    spec.validate()?;
    Ok(OvfPackage {
        spec,
        disk_file: disk_file.to_owned(),
        disk_file_size,
        disk_capacity,
    })
}

const UNITS_PROBLEM: &str = "is not a unit this cloud reads (byte or byte * 2^n)";
const OVERFLOW: &str = "is too large";

/// The one child `name` of `parent`; absent or repeated is an error.
fn required_child<'a>(
    parent: &'a Element,
    parent_path: &str,
    name: &'static str,
) -> Result<&'a Element, OvfError> {
    let mut found = parent.children().filter(|c| c.is(name, OVF_NS));
    match (found.next(), found.count()) {
        (None, _) => Err(OvfError::MissingElement {
            parent: parent_path.to_owned(),
            element: name,
        }),
        (Some(child), 0) => Ok(child),
        (Some(_), more) => Err(OvfError::NotExactlyOne {
            parent: parent_path.to_owned(),
            element: name,
            found: more + 1,
        }),
    }
}

/// The one child `name` of `parent`, reported as a count when there is not
/// exactly one (this cloud moves one disk per VM).
fn exactly_one<'a>(
    parent: &'a Element,
    parent_path: &str,
    name: &'static str,
) -> Result<&'a Element, OvfError> {
    let found: Vec<_> = parent.children().filter(|c| c.is(name, OVF_NS)).collect();
    match found[..] {
        [child] => Ok(child),
        _ => Err(OvfError::NotExactlyOne {
            parent: parent_path.to_owned(),
            element: name,
            found: found.len(),
        }),
    }
}

/// The `ovf:`-namespaced attribute `qualified` (written with its usual
/// prefix, looked up by namespace).
fn ovf_attribute<'a>(
    element: &'a Element,
    path: &str,
    qualified: &'static str,
) -> Result<&'a str, OvfError> {
    let local = qualified.trim_start_matches("ovf:");
    element
        .attr_ns(OVF_NS, local)
        .ok_or_else(|| OvfError::MissingAttribute {
            element: path.to_owned(),
            attribute: qualified,
        })
}

/// The one hardware item of `resource_type`.
fn hardware_item<'a>(
    hardware: &'a Element,
    (resource_type, description): (u64, &'static str),
) -> Result<&'a Element, OvfError> {
    let mut matching = Vec::new();
    for item in hardware.children().filter(|c| c.is("Item", OVF_NS)) {
        let at = format!("{HARDWARE}/Item");
        let text = rasd_text(item, &at, "ResourceType", "rasd:ResourceType")?;
        if number(&at, "rasd:ResourceType", &text)? == resource_type {
            matching.push(item);
        }
    }
    match matching[..] {
        [item] => Ok(item),
        [] => Err(OvfError::MissingElement {
            parent: HARDWARE.to_owned(),
            element: description,
        }),
        _ => Err(OvfError::NotExactlyOne {
            parent: HARDWARE.to_owned(),
            element: description,
            found: matching.len(),
        }),
    }
}

/// The trimmed text of the `rasd:` child `local` of `item`.
fn rasd_text(
    item: &Element,
    at: &str,
    local: &str,
    qualified: &'static str,
) -> Result<String, OvfError> {
    let child = item
        .get_child(local, RASD_NS)
        .ok_or_else(|| OvfError::MissingElement {
            parent: at.to_owned(),
            element: qualified,
        })?;
    Ok(child.text().trim().to_owned())
}

fn virtual_quantity(item: &Element, at: &str) -> Result<u64, OvfError> {
    let text = rasd_text(item, at, "VirtualQuantity", "rasd:VirtualQuantity")?;
    number(at, "rasd:VirtualQuantity", &text)
}

/// The memory item's size in MiB, whatever unit it is written in.
fn memory_mib(item: &Element) -> Result<u64, OvfError> {
    let at = MEMORY.1;
    let quantity = virtual_quantity(item, at)?;
    let units = rasd_text(item, at, "AllocationUnits", "rasd:AllocationUnits")?;
    let unit = unit_in_bytes(&units)
        .ok_or_else(|| bad_value(at, "rasd:AllocationUnits", &units, UNITS_PROBLEM))?;
    let bytes = quantity
        .checked_mul(unit)
        .ok_or_else(|| bad_value(at, "rasd:VirtualQuantity", &quantity.to_string(), OVERFLOW))?;
    if !bytes.is_multiple_of(MIB) {
        return Err(bad_value(
            at,
            "rasd:VirtualQuantity",
            &quantity.to_string(),
            "is not a whole number of MiB",
        ));
    }
    Ok(bytes / MIB)
}

/// The size in bytes of a DMTF programmatic unit `byte` or `byte * 2^n`.
fn unit_in_bytes(units: &str) -> Option<u64> {
    let compact: String = units.chars().filter(|c| !c.is_whitespace()).collect();
    if compact == "byte" {
        return Some(1);
    }
    let exponent: u32 = compact.strip_prefix("byte*2^")?.parse().ok()?;
    1u64.checked_shl(exponent).filter(|_| exponent < 64)
}

/// A non-negative decimal integer, digits only.
fn number(at: &str, attribute: &'static str, text: &str) -> Result<u64, OvfError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_value(at, attribute, text, "is not a decimal integer"));
    }
    text.parse()
        .map_err(|_| bad_value(at, attribute, text, OVERFLOW))
}

fn bad_value(at: &str, attribute: &str, value: &str, problem: &'static str) -> OvfError {
    OvfError::BadValue {
        at: format!("{at} {attribute}"),
        value: snippet(value),
        problem,
    }
}

/// A name that stays in the directory it is joined to.
fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains(['/', '\\', ':'])
        && !name.contains("..")
        && !name.chars().any(char::is_control)
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::error::SpecError;

    fn spec() -> InstanceSpec {
        InstanceSpec {
            name: "web-1".into(),
            vcpu: 4,
            memory_mib: 2048,
            disk_bytes: 10 * 1024 * MIB,
        }
    }

    fn descriptor() -> String {
        generate(&spec(), "web-1.qcow2", 196_616)
    }

    /// The descriptor with `from` replaced by `to`; panics if `from` is not
    /// there, so a mutation that silently does nothing fails the test.
    fn edited(from: &str, to: &str) -> String {
        let xml = descriptor();
        assert!(xml.contains(from), "{from:?} not in the descriptor");
        xml.replacen(from, to, 1)
    }

    /// The descriptor without the element that starts at `start` and ends
    /// with `end`.
    fn without(start: &str, end: &str) -> String {
        let xml = descriptor();
        let from = xml.find(start).expect("start present");
        let to = from + xml[from..].find(end).expect("end present") + end.len();
        format!("{}{}", &xml[..from], &xml[to..])
    }

    fn refusal(xml: &str) -> OvfError {
        parse(xml).expect_err("the descriptor is refused")
    }

    #[test]
    fn a_generated_descriptor_parses_back_to_the_same_vm() {
        let package = parse(&descriptor()).expect("parses");
        assert_eq!(
            package,
            OvfPackage {
                spec: spec(),
                disk_file: "web-1.qcow2".into(),
                disk_file_size: 196_616,
                disk_capacity: 10 * 1024 * MIB,
            }
        );
        let edges = InstanceSpec {
            name: "0".into(),
            vcpu: 256,
            memory_mib: 4 * 1024 * 1024,
            disk_bytes: 64 * 1024 * 1024 * MIB,
        };
        let back = parse(&generate(&edges, "0.qcow2", u64::MAX)).expect("parses");
        assert_eq!(back.spec, edges);
        assert_eq!(back.disk_file_size, u64::MAX);
    }

    #[test]
    fn prefixes_are_read_through_their_namespaces() {
        let xml = descriptor()
            .replace("xmlns:ovf=", "xmlns:o=")
            .replace("ovf:", "o:")
            .replace("o:/disk/", "ovf:/disk/")
            .replace("xmlns:rasd=", "xmlns:r=")
            .replace("rasd:", "r:");
        assert!(xml.contains("<r:VirtualQuantity>") && xml.contains(" o:href="));
        assert_eq!(parse(&xml).expect("parses").spec, spec());

        // The right local names in the wrong namespace are not OVF.
        let foreign = descriptor().replace(
            &format!("xmlns:ovf=\"{OVF_NS}\""),
            "xmlns:ovf=\"urn:not-ovf\"",
        );
        assert_eq!(
            refusal(&foreign),
            OvfError::MissingAttribute {
                element: FILE.into(),
                attribute: "ovf:id"
            }
        );
        // An undeclared prefix is not namespace-correct XML.
        let undeclared = descriptor().replace(&format!(" xmlns:rasd=\"{RASD_NS}\""), "");
        assert!(matches!(refusal(&undeclared), OvfError::NotXml(_)));
    }

    #[test]
    fn units_other_than_mib_are_converted() {
        let xml = edited(
            "<rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>",
            "<rasd:AllocationUnits>byte*2^30</rasd:AllocationUnits>",
        )
        .replace(
            "<rasd:VirtualQuantity>2048</rasd:VirtualQuantity>",
            "<rasd:VirtualQuantity>2</rasd:VirtualQuantity>",
        );
        assert_eq!(parse(&xml).expect("parses").spec.memory_mib, 2048);

        let xml = edited(" ovf:capacityAllocationUnits=\"byte\"", "");
        assert_eq!(parse(&xml).expect("parses").disk_capacity, 10 * 1024 * MIB);
        let xml = edited("ovf:capacity=\"10737418240\"", "ovf:capacity=\"10\"").replace(
            "capacityAllocationUnits=\"byte\"",
            "capacityAllocationUnits=\"byte * 2^30\"",
        );
        assert_eq!(parse(&xml).expect("parses").disk_capacity, 10 * 1024 * MIB);

        let xml = edited("byte * 2^20", "MegaBytes");
        assert_eq!(
            refusal(&xml).to_string(),
            "Item with rasd:ResourceType 4 (memory) rasd:AllocationUnits = \"MegaBytes\" \
             is not a unit this cloud reads (byte or byte * 2^n)"
        );
        let xml = edited("byte * 2^20", "byte * 2^10").replace(
            ">2048</rasd:VirtualQuantity>",
            ">1000</rasd:VirtualQuantity>",
        );
        assert!(matches!(
            refusal(&xml),
            OvfError::BadValue {
                problem: "is not a whole number of MiB",
                ..
            }
        ));
    }

    #[test]
    fn what_is_not_an_ovf_envelope_is_refused() {
        assert!(matches!(refusal("<Envelope"), OvfError::NotXml(_)));
        assert!(matches!(refusal(""), OvfError::NotXml(_)));
        assert!(matches!(refusal("<Envelope/>"), OvfError::NotXml(_)));
        assert_eq!(
            refusal("<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\"/>").to_string(),
            "the root element is {http://schemas.dmtf.org/ovf/envelope/1}Envelope, \
             expected Envelope in namespace http://schemas.dmtf.org/ovf/envelope/2"
        );
        assert!(matches!(
            refusal(&format!("<Disk xmlns=\"{OVF_NS}\"/>")),
            OvfError::WrongRoot { .. }
        ));
        let huge = format!("{}{}", descriptor(), " ".repeat(MAX_DESCRIPTOR_BYTES));
        assert_eq!(
            refusal(&huge),
            OvfError::TooLarge {
                len: huge.len(),
                max: MAX_DESCRIPTOR_BYTES
            }
        );
    }

    #[test]
    fn missing_sections_are_named() {
        for (start, end, element) in [
            ("<VirtualSystem ", "</VirtualSystem>", "VirtualSystem"),
            ("<References>", "</References>", "References"),
            ("<DiskSection>", "</DiskSection>", "DiskSection"),
        ] {
            assert_eq!(
                refusal(&without(start, end)),
                OvfError::MissingElement {
                    parent: "Envelope".into(),
                    element
                },
                "{element}"
            );
        }
        assert_eq!(
            refusal(&without("<VirtualSystem ", "</VirtualSystem>")).to_string(),
            "missing VirtualSystem (in Envelope)"
        );
        assert_eq!(
            refusal(&without(
                "<VirtualHardwareSection>",
                "</VirtualHardwareSection>"
            )),
            OvfError::MissingElement {
                parent: SYSTEM.into(),
                element: "VirtualHardwareSection"
            }
        );
    }

    #[test]
    fn exactly_one_file_and_one_disk() {
        let disk_line = descriptor()
            .lines()
            .find(|l| l.contains("<Disk "))
            .expect("disk line")
            .to_owned();
        let two_disks = edited(&disk_line, &format!("{disk_line}\n{disk_line}"));
        assert_eq!(
            refusal(&two_disks).to_string(),
            "Envelope/DiskSection has 2 Disk elements, expected exactly one"
        );
        let no_disk = edited(&disk_line, "");
        assert_eq!(
            refusal(&no_disk),
            OvfError::NotExactlyOne {
                parent: DISK_SECTION.into(),
                element: "Disk",
                found: 0
            }
        );
        let file_line = descriptor()
            .lines()
            .find(|l| l.contains("<File "))
            .expect("file line")
            .to_owned();
        let two_files = edited(&file_line, &format!("{file_line}{file_line}"));
        assert!(matches!(
            refusal(&two_files),
            OvfError::NotExactlyOne {
                element: "File",
                found: 2,
                ..
            }
        ));
    }

    #[test]
    fn the_disk_file_must_be_a_plain_file_name() {
        for href in [
            "../web-1.qcow2",
            "/etc/shadow",
            "a/b.qcow2",
            "..",
            "",
            "c:x",
            "a\\b",
        ] {
            let xml = edited("ovf:href=\"web-1.qcow2\"", &format!("ovf:href=\"{href}\""));
            assert!(
                matches!(
                    refusal(&xml),
                    OvfError::BadValue { ref at, .. } if at == "Envelope/References/File ovf:href"
                ),
                "{href:?}"
            );
        }
        let xml = edited("ovf:href=\"web-1.qcow2\"", "ovf:href=\"../x\"");
        assert_eq!(
            refusal(&xml).to_string(),
            "Envelope/References/File ovf:href = \"../x\" is not a plain file name \
             (no '/', '\\', ':', '..' or control characters)"
        );
    }

    #[test]
    fn sizes_must_be_decimal_integers() {
        let xml = edited("ovf:size=\"196616\"", "ovf:size=\"12x\"");
        assert_eq!(
            refusal(&xml).to_string(),
            "Envelope/References/File ovf:size = \"12x\" is not a decimal integer"
        );
        for capacity in ["", "-1", "1e9", " 10", "lots"] {
            let xml = edited(
                "ovf:capacity=\"10737418240\"",
                &format!("ovf:capacity=\"{capacity}\""),
            );
            assert!(
                matches!(
                    refusal(&xml),
                    OvfError::BadValue { ref at, problem: "is not a decimal integer", .. }
                        if at == "Envelope/DiskSection/Disk ovf:capacity"
                ),
                "{capacity:?}"
            );
        }
        let xml = edited(
            "ovf:capacity=\"10737418240\"",
            "ovf:capacity=\"99999999999999999999\"",
        );
        assert!(matches!(
            refusal(&xml),
            OvfError::BadValue {
                problem: "is too large",
                ..
            }
        ));
        let xml = edited(
            "<rasd:VirtualQuantity>4</rasd:VirtualQuantity>",
            "<rasd:VirtualQuantity>four</rasd:VirtualQuantity>",
        );
        assert!(matches!(
            refusal(&xml),
            OvfError::BadValue { ref at, .. }
                if at == "Item with rasd:ResourceType 3 (CPU) rasd:VirtualQuantity"
        ));
        let xml = edited(" ovf:size=\"196616\"", "");
        assert_eq!(
            refusal(&xml).to_string(),
            "Envelope/References/File has no ovf:size attribute"
        );
    }

    #[test]
    fn the_vm_must_be_one_this_cloud_runs() {
        let xml = edited(
            "<VirtualSystem ovf:id=\"web-1\">",
            "<VirtualSystem ovf:id=\"Web_1\">",
        );
        assert!(matches!(
            refusal(&xml),
            OvfError::Spec(SpecError::Name { ref name, .. }) if name == "Web_1"
        ));
        assert_eq!(
            refusal(&xml).to_string(),
            "VirtualSystem: instance name \"Web_1\" is invalid: \
             it must start with a lowercase letter or a digit"
        );
        let xml = edited(
            "<rasd:VirtualQuantity>4</rasd:VirtualQuantity>",
            "<rasd:VirtualQuantity>1000</rasd:VirtualQuantity>",
        );
        assert!(matches!(
            refusal(&xml),
            OvfError::Spec(SpecError::OutOfRange { field: "vcpu", .. })
        ));
        let xml = edited(
            "<rasd:VirtualQuantity>4</rasd:VirtualQuantity>",
            "<rasd:VirtualQuantity>4294967296</rasd:VirtualQuantity>",
        );
        assert!(matches!(
            refusal(&xml),
            OvfError::BadValue {
                problem: "is too large",
                ..
            }
        ));
        let xml = edited("<VirtualSystem ovf:id=\"web-1\">", "<VirtualSystem>");
        assert_eq!(
            refusal(&xml),
            OvfError::MissingAttribute {
                element: SYSTEM.into(),
                attribute: "ovf:id"
            }
        );
    }

    #[test]
    fn cpu_memory_and_disk_items_are_required() {
        for (resource_type, description) in [(3, CPU.1), (4, MEMORY.1), (17, DISK_DRIVE.1)] {
            // ResourceType 10 (an Ethernet adapter) is ignored.
            let xml = edited(
                &format!("<rasd:ResourceType>{resource_type}</rasd:ResourceType>"),
                "<rasd:ResourceType>10</rasd:ResourceType>",
            );
            assert_eq!(
                refusal(&xml),
                OvfError::MissingElement {
                    parent: HARDWARE.into(),
                    element: description
                }
            );
        }
        assert_eq!(
            refusal(&edited(
                "<rasd:ResourceType>3</rasd:ResourceType>",
                "<rasd:ResourceType>10</rasd:ResourceType>"
            ))
            .to_string(),
            "missing Item with rasd:ResourceType 3 (CPU) \
             (in Envelope/VirtualSystem/VirtualHardwareSection)"
        );
        let xml = edited(
            "<rasd:ResourceType>17</rasd:ResourceType>",
            "<rasd:ResourceType>3</rasd:ResourceType>",
        );
        assert!(matches!(
            refusal(&xml),
            OvfError::NotExactlyOne { element, found: 2, .. } if element == CPU.1
        ));
        let xml = edited("<rasd:ResourceType>4</rasd:ResourceType>", "");
        assert_eq!(
            refusal(&xml),
            OvfError::MissingElement {
                parent: format!("{HARDWARE}/Item"),
                element: "rasd:ResourceType"
            }
        );
    }

    #[test]
    fn references_between_file_disk_and_drive_must_hold() {
        let xml = edited("ovf:fileRef=\"file1\"", "ovf:fileRef=\"file2\"");
        assert_eq!(
            refusal(&xml).to_string(),
            "Envelope/DiskSection/Disk ovf:fileRef = \"file2\" refers to no File in Envelope/References"
        );
        let xml = edited("ovf:/disk/disk1", "ovf:/disk/disk2");
        assert!(matches!(
            refusal(&xml),
            OvfError::DanglingReference { ref value, .. } if value == "ovf:/disk/disk2"
        ));
        let xml = edited(
            "ovf:format=\"http://www.gnu.org/software/qemu/qcow2\"",
            "ovf:format=\"http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized\"",
        );
        assert!(matches!(
            refusal(&xml),
            OvfError::BadValue { ref at, .. } if at == "Envelope/DiskSection/Disk ovf:format"
        ));
    }

    #[test]
    fn generated_text_is_escaped() {
        let odd = InstanceSpec {
            name: "a\"<&'>".into(),
            ..spec()
        };
        let xml = generate(&odd, "x&y.qcow2", 1);
        // Well-formed: the parser gets as far as the name rule.
        assert!(
            matches!(refusal(&xml), OvfError::Spec(SpecError::Name { ref name, .. }) if name == "a\"<&'>")
        );
    }
}
