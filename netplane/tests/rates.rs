//! Rate caps (TBF root qdiscs) against the kernel, inside a namespace made
//! for the test. Needs root: without it the test fails, it does not skip.

mod common;

use common::{Cleanup, ns_name, require_root};
use intercloud_netplane::{Netplane, Removed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_is_set_read_back_changed_and_cleared() {
    require_root();
    let mut cleanup = Cleanup::default();
    let ns = cleanup.namespace(&ns_name("rate"));
    Netplane::create_namespace(&ns).await.expect("create");
    let np = Netplane::in_namespace(&ns).await.expect("handle");
    np.create_veth("icvrate0", "icvrate1").await.expect("veth");
    np.set_up("icvrate0").await.expect("up");

    assert_eq!(np.rate("icvrate0").await.expect("no cap"), None);
    assert_eq!(
        np.clear_rate("icvrate0").await.expect("clear nothing"),
        Removed::WasAbsent
    );

    np.set_rate("icvrate0", 20_000_000).await.expect("set");
    assert_eq!(np.rate("icvrate0").await.expect("read"), Some(20_000_000));
    // The other end and an unknown link are untouched.
    assert_eq!(np.rate("icvrate1").await.expect("read peer"), None);

    np.set_rate("icvrate0", 100_000_000).await.expect("change");
    assert_eq!(np.rate("icvrate0").await.expect("read"), Some(100_000_000));
    // Past 4 GiB/s the rate goes in TCA_TBF_RATE64.
    np.set_rate("icvrate0", 40_000_000_000).await.expect("fast");
    assert_eq!(
        np.rate("icvrate0").await.expect("read"),
        Some(40_000_000_000)
    );

    assert_eq!(
        np.clear_rate("icvrate0").await.expect("clear"),
        Removed::Deleted
    );
    assert_eq!(np.rate("icvrate0").await.expect("read"), None);
    assert_eq!(
        np.clear_rate("icvrate0").await.expect("again"),
        Removed::WasAbsent
    );
    assert_eq!(
        np.clear_rate("icvnone").await.expect("no link"),
        Removed::WasAbsent
    );
    let missing = np
        .set_rate("icvnone", 1_000_000)
        .await
        .expect_err("no link");
    assert!(missing.to_string().contains("icvnone"), "{missing}");
    drop(np);
}
