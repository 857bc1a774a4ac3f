//! The registry's rules, one test per rule and per refusal.

use super::*;
use crate::spec::tests::spec;
use crate::vni::VniRange;

fn allocator() -> VniAllocator {
    VniAllocator::new(VniRange::new(100, 199).expect("valid"), [])
}

fn tenant(s: &str) -> TenantId {
    TenantId::new(s).expect("valid tenant")
}

fn name(s: &str) -> VnetName {
    VnetName::new(s).expect("valid name")
}

fn full() -> MirrorStrategy {
    MirrorStrategy::Full
}

#[test]
fn creating_a_vnet_allocates_a_vni_and_records_it() {
    let (mut registry, mut vnis) = (Registry::new(), allocator());
    let record = registry
        .create(
            spec("acme", "blue", "10.20.0.0/24", &["cloud-a"]),
            &mut vnis,
        )
        .expect("created");
    assert_eq!(record.vni.value(), 100);
    assert!(!record.is_mirror());
    assert_eq!(registry.vnet(&tenant("acme"), &name("blue")), Some(&record));
    assert_eq!(registry.by_vni(record.vni), Some(&record));
    assert!(vnis.is_in_use(record.vni));
}

#[test]
fn a_duplicate_name_within_the_tenant_is_refused() {
    let (mut registry, mut vnis) = (Registry::new(), allocator());
    registry
        .create(
            spec("acme", "blue", "10.20.0.0/24", &["cloud-a"]),
            &mut vnis,
        )
        .expect("created");
    let error = registry
        .create(
            spec("acme", "blue", "10.30.0.0/24", &["cloud-a"]),
            &mut vnis,
        )
        .expect_err("duplicate");
    assert_eq!(
        error.to_string(),
        "vnet \"blue\" already exists for tenant acme"
    );
    // Another tenant may use the name.
    registry
        .create(
            spec("globex", "blue", "10.30.0.0/24", &["cloud-a"]),
            &mut vnis,
        )
        .expect("other tenant");
}

#[test]
fn an_overlapping_network_of_the_same_tenant_is_refused() {
    let (mut registry, mut vnis) = (Registry::new(), allocator());
    registry
        .create(
            spec("acme", "blue", "10.20.0.0/23", &["cloud-a"]),
            &mut vnis,
        )
        .expect("created");
    let error = registry
        .create(
            spec("acme", "green", "10.20.0.0/24", &["cloud-b"]),
            &mut vnis,
        )
        .expect_err("inside blue");
    assert_eq!(
        error.to_string(),
        "10.20.0.0/24 overlaps vnet \"blue\" (10.20.0.0/23) of tenant acme"
    );
    // A wider network around an existing one overlaps too.
    let error = registry
        .create(spec("acme", "green", "10.0.0.0/8", &["cloud-b"]), &mut vnis)
        .expect_err("around blue");
    assert!(matches!(error, RegistryError::Overlap { .. }));
    // Adjacent networks do not overlap.
    registry
        .create(
            spec("acme", "green", "10.20.2.0/24", &["cloud-b"]),
            &mut vnis,
        )
        .expect("adjacent");
}

#[test]
fn different_tenants_may_reuse_a_network() {
    let (mut registry, mut vnis) = (Registry::new(), allocator());
    let a = registry
        .create(
            spec("acme", "blue", "10.20.0.0/24", &["cloud-a"]),
            &mut vnis,
        )
        .expect("created");
    let b = registry
        .create(
            spec("globex", "red", "10.20.0.0/24", &["cloud-a"]),
            &mut vnis,
        )
        .expect("other tenant");
    assert_ne!(a.vni, b.vni);
}

#[test]
fn a_refused_creation_takes_no_vni() {
    let (mut registry, mut vnis) = (Registry::new(), allocator());
    registry
        .create(
            spec("acme", "blue", "10.20.0.0/24", &["cloud-a"]),
            &mut vnis,
        )
        .expect("created");
    let before = vnis.clone();
    registry
        .create(
            spec("acme", "green", "10.20.0.0/24", &["cloud-a"]),
            &mut vnis,
        )
        .expect_err("overlap");
    assert_eq!(vnis, before);
    assert_eq!(registry.list(&tenant("acme")).count(), 1);
}

#[test]
fn exhausted_vnis_refuse_creation_and_record_nothing() {
    let mut registry = Registry::new();
    let mut vnis = VniAllocator::new(VniRange::new(7, 7).expect("valid"), []);
    registry
        .create(
            spec("acme", "blue", "10.20.0.0/24", &["cloud-a"]),
            &mut vnis,
        )
        .expect("created");
    let error = registry
        .create(
            spec("acme", "green", "10.30.0.0/24", &["cloud-a"]),
            &mut vnis,
        )
        .expect_err("exhausted");
    assert_eq!(error.to_string(), "every VNI of the range 7-7 is in use");
    assert!(registry.vnet(&tenant("acme"), &name("green")).is_none());
}

#[test]
fn an_allocator_out_of_step_never_gives_a_record_s_vni_twice() {
    let (mut registry, mut vnis) = (Registry::new(), allocator());
    let blue = registry
        .create(
            spec("acme", "blue", "10.20.0.0/24", &["cloud-a"]),
            &mut vnis,
        )
        .expect("created");
    // An allocator that forgot blue's VNI.
    let mut forgetful = allocator();
    let green = registry
        .create(
            spec("acme", "green", "10.30.0.0/24", &["cloud-a"]),
            &mut forgetful,
        )
        .expect("created");
    assert_ne!(green.vni, blue.vni);
    assert!(forgetful.is_in_use(blue.vni));
}

#[test]
fn deleting_releases_the_vni() {
    let (mut registry, mut vnis) = (Registry::new(), allocator());
    let blue = registry
        .create(
            spec("acme", "blue", "10.20.0.0/24", &["cloud-a"]),
            &mut vnis,
        )
        .expect("created");
    let gone = registry
        .delete(&tenant("acme"), &name("blue"), &mut vnis)
        .expect("deleted");
    assert_eq!(gone, blue);
    assert!(!vnis.is_in_use(blue.vni));
    assert!(registry.vnet(&tenant("acme"), &name("blue")).is_none());
}

#[test]
fn deleting_a_missing_vnet_is_refused() {
    let (mut registry, mut vnis) = (Registry::new(), allocator());
    let error = registry
        .delete(&tenant("acme"), &name("blue"), &mut vnis)
        .expect_err("missing");
    assert_eq!(error.to_string(), "tenant acme has no vnet \"blue\"");
}

#[test]
fn a_mirror_clones_its_production_with_a_vni_of_its_own() {
    let (mut registry, mut vnis) = (Registry::new(), allocator());
    let blue = registry
        .create(
            spec("acme", "blue", "10.20.0.0/24", &["cloud-a", "cloud-b"]),
            &mut vnis,
        )
        .expect("created");
    let mirror = registry
        .create_mirror(
            &tenant("acme"),
            &name("blue"),
            name("blue-m"),
            full(),
            &mut vnis,
        )
        .expect("mirror created");
    assert_eq!(mirror.spec.cidr(), blue.spec.cidr());
    assert_eq!(mirror.spec.clouds(), blue.spec.clouds());
    assert_ne!(mirror.vni, blue.vni);
    assert_eq!(
        mirror.mirror_of,
        Some(MirrorOf {
            production: name("blue"),
            strategy: full()
        })
    );
    assert_eq!(
        registry.mirror(&tenant("acme"), &name("blue")),
        Some(&mirror)
    );
}

#[test]
fn a_mirror_is_exempt_from_the_overlap_check_against_its_production_only() {
    let (mut registry, mut vnis) = (Registry::new(), allocator());
    registry
        .create(
            spec("acme", "blue", "10.20.0.0/24", &["cloud-a"]),
            &mut vnis,
        )
        .expect("created");
    registry
        .create_mirror(
            &tenant("acme"),
            &name("blue"),
            name("blue-m"),
            full(),
            &mut vnis,
        )
        .expect("same network as blue is fine");
    // Any other VNet of the tenant on that network still overlaps.
    let error = registry
        .create(
            spec("acme", "green", "10.20.0.0/24", &["cloud-a"]),
            &mut vnis,
        )
        .expect_err("overlap");
    assert!(matches!(error, RegistryError::Overlap { .. }));
}

#[test]
fn a_mirror_whose_network_overlaps_another_vnet_is_refused() {
    let mut registry = Registry::new();
    let mut vnis = allocator();
    // create refuses overlaps, so only a tampered registry has green
    // overlapping blue: the mirror's exemption covers blue and nothing else.
    registry
        .create(
            spec("acme", "blue", "10.20.0.0/24", &["cloud-a"]),
            &mut vnis,
        )
        .expect("created");
    registry
        .create(
            spec("acme", "green", "10.21.0.0/24", &["cloud-a"]),
            &mut vnis,
        )
        .expect("created");
    let key = (tenant("acme"), name("green"));
    let green = registry.vnets.get_mut(&key).expect("present");
    green.spec = spec("acme", "green", "10.20.0.0/23", &["cloud-a"]);
    let error = registry
        .create_mirror(
            &tenant("acme"),
            &name("blue"),
            name("blue-m"),
            full(),
            &mut vnis,
        )
        .expect_err("overlaps green");
    assert_eq!(
        error.to_string(),
        "10.20.0.0/24 overlaps vnet \"green\" (10.20.0.0/23) of tenant acme"
    );
}

#[test]
fn a_mirror_of_a_missing_vnet_is_refused() {
    let (mut registry, mut vnis) = (Registry::new(), allocator());
    let error = registry
        .create_mirror(
            &tenant("acme"),
            &name("blue"),
            name("blue-m"),
            full(),
            &mut vnis,
        )
        .expect_err("missing");
    assert_eq!(error.to_string(), "tenant acme has no vnet \"blue\"");
    assert!(vnis.in_use().is_empty());
}

#[test]
fn a_mirror_of_a_mirror_is_refused() {
    let (mut registry, mut vnis) = (Registry::new(), allocator());
    registry
        .create(
            spec("acme", "blue", "10.20.0.0/24", &["cloud-a"]),
            &mut vnis,
        )
        .expect("created");
    registry
        .create_mirror(
            &tenant("acme"),
            &name("blue"),
            name("blue-m"),
            full(),
            &mut vnis,
        )
        .expect("mirror");
    let error = registry
        .create_mirror(
            &tenant("acme"),
            &name("blue-m"),
            name("blue-mm"),
            full(),
            &mut vnis,
        )
        .expect_err("chain");
    assert_eq!(
        error.to_string(),
        "vnet \"blue-m\" is itself a mirror of \"blue\"; a mirror cannot be mirrored"
    );
}

#[test]
fn a_second_mirror_is_refused_naming_the_first() {
    let (mut registry, mut vnis) = (Registry::new(), allocator());
    registry
        .create(
            spec("acme", "blue", "10.20.0.0/24", &["cloud-a"]),
            &mut vnis,
        )
        .expect("created");
    registry
        .create_mirror(
            &tenant("acme"),
            &name("blue"),
            name("blue-m"),
            full(),
            &mut vnis,
        )
        .expect("mirror");
    let before = vnis.clone();
    let error = registry
        .create_mirror(
            &tenant("acme"),
            &name("blue"),
            name("blue-n"),
            full(),
            &mut vnis,
        )
        .expect_err("second");
    assert_eq!(
        error.to_string(),
        "vnet \"blue\" of tenant acme already has mirror \"blue-m\""
    );
    assert_eq!(vnis, before);
}

#[test]
fn a_mirror_named_like_its_production_or_another_vnet_is_refused() {
    let (mut registry, mut vnis) = (Registry::new(), allocator());
    registry
        .create(
            spec("acme", "blue", "10.20.0.0/24", &["cloud-a"]),
            &mut vnis,
        )
        .expect("created");
    registry
        .create(
            spec("acme", "green", "10.30.0.0/24", &["cloud-a"]),
            &mut vnis,
        )
        .expect("created");
    let error = registry
        .create_mirror(
            &tenant("acme"),
            &name("blue"),
            name("blue"),
            full(),
            &mut vnis,
        )
        .expect_err("same name");
    assert_eq!(
        error.to_string(),
        "mirror of vnet \"blue\" cannot have the same name"
    );
    let error = registry
        .create_mirror(
            &tenant("acme"),
            &name("blue"),
            name("green"),
            full(),
            &mut vnis,
        )
        .expect_err("taken name");
    assert_eq!(
        error.to_string(),
        "vnet \"green\" already exists for tenant acme"
    );
}

#[test]
fn a_vnet_with_a_mirror_cannot_be_deleted_until_the_mirror_is() {
    let (mut registry, mut vnis) = (Registry::new(), allocator());
    registry
        .create(
            spec("acme", "blue", "10.20.0.0/24", &["cloud-a"]),
            &mut vnis,
        )
        .expect("created");
    registry
        .create_mirror(
            &tenant("acme"),
            &name("blue"),
            name("blue-m"),
            full(),
            &mut vnis,
        )
        .expect("mirror");
    let error = registry
        .delete(&tenant("acme"), &name("blue"), &mut vnis)
        .expect_err("has a mirror");
    assert_eq!(
        error.to_string(),
        "vnet \"blue\" of tenant acme still has mirror \"blue-m\"; delete the mirror first"
    );
    registry
        .delete(&tenant("acme"), &name("blue-m"), &mut vnis)
        .expect("mirror deleted");
    registry
        .delete(&tenant("acme"), &name("blue"), &mut vnis)
        .expect("then production");
    assert!(vnis.in_use().is_empty());
}

#[test]
fn lookups_list_per_tenant_and_per_cloud() {
    let (mut registry, mut vnis) = (Registry::new(), allocator());
    registry
        .create(
            spec("acme", "blue", "10.20.0.0/24", &["cloud-a", "cloud-b"]),
            &mut vnis,
        )
        .expect("created");
    registry
        .create(
            spec("acme", "green", "10.30.0.0/24", &["cloud-b"]),
            &mut vnis,
        )
        .expect("created");
    registry
        .create(
            spec("globex", "red", "10.20.0.0/24", &["cloud-a"]),
            &mut vnis,
        )
        .expect("created");
    let names = |it: Vec<&VnetRecord>| -> Vec<String> {
        it.iter().map(|r| r.spec.name().to_string()).collect()
    };
    assert_eq!(
        names(registry.list(&tenant("acme")).collect()),
        ["blue", "green"]
    );
    assert_eq!(names(registry.list(&tenant("globex")).collect()), ["red"]);
    let cloud_a = CloudId::new("cloud-a").expect("valid");
    assert_eq!(
        names(registry.spanning(&cloud_a).collect()),
        ["blue", "red"]
    );
    assert_eq!(registry.all().count(), 3);
    assert_eq!(registry.vnis().len(), 3);
}

#[test]
fn the_registry_round_trips_through_serde() {
    let (mut registry, mut vnis) = (Registry::new(), allocator());
    registry
        .create(
            spec("acme", "blue", "10.20.0.0/24", &["cloud-a"]),
            &mut vnis,
        )
        .expect("created");
    registry
        .create_mirror(
            &tenant("acme"),
            &name("blue"),
            name("a-mirror"),
            full(),
            &mut vnis,
        )
        .expect("mirror (sorts before its production)");
    let text = serde_json::to_string(&registry).expect("serializes");
    assert_eq!(
        serde_json::from_str::<Registry>(&text).expect("deserializes"),
        registry
    );
}

#[test]
fn a_restored_registry_is_checked() {
    let (mut registry, mut vnis) = (Registry::new(), allocator());
    registry
        .create(
            spec("acme", "blue", "10.20.0.0/24", &["cloud-a"]),
            &mut vnis,
        )
        .expect("created");
    registry
        .create(
            spec("acme", "green", "10.30.0.0/24", &["cloud-a"]),
            &mut vnis,
        )
        .expect("created");
    let text = serde_json::to_string(&registry).expect("serializes");

    let same_vni = text.replace(r#""vni":101"#, r#""vni":100"#);
    let error = serde_json::from_str::<Registry>(&same_vni).expect_err("same VNI");
    assert!(
        error
            .to_string()
            .contains("VNI 100 is used by both vnet \"blue\" and vnet \"green\"")
    );

    let overlap = text.replace("10.30.0.0/24", "10.20.0.0/16");
    let error = serde_json::from_str::<Registry>(&overlap).expect_err("overlap");
    assert!(error.to_string().contains("overlaps vnet \"blue\""));

    let orphan = text.replace(
        r#""vni":101}"#,
        r#""vni":101,"mirror_of":{"production":"gone","strategy":"full"}}"#,
    );
    let error = serde_json::from_str::<Registry>(&orphan).expect_err("orphan");
    assert!(
        error
            .to_string()
            .contains("is a mirror of \"gone\", which does not exist")
    );
}
