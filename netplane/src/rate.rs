//! Egress rate caps: a TBF (token bucket filter) root qdisc on a device
//! (`tc qdisc replace dev DEV root tbf rate R burst B limit L`).
//!
//! netlink-packet-route has no TBF options, so the qdisc's TCA_OPTIONS are
//! built here by hand: TCA_TBF_PARMS (`struct tc_tbf_qopt`), TCA_TBF_BURST
//! (the bucket in bytes, so no psched tick rate is needed) and, for rates of
//! 2^32 bytes per second or more, TCA_TBF_RATE64.

use futures::StreamExt;
use rtnetlink::packet_core::{
    DefaultNla, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkMessage,
    NetlinkPayload, Nla,
};
use rtnetlink::packet_route::tc::{TcAttribute, TcHandle, TcMessage, TcOption};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::{Error, Netplane, Removed};

const ENOENT: i32 = nix::errno::Errno::ENOENT as i32;

/// The qdisc kind.
pub(crate) const TBF: &str = "tbf";
const TCA_TBF_PARMS: u16 = 1;
const TCA_TBF_RATE64: u16 = 4;
const TCA_TBF_BURST: u16 = 6;
/// `TC_LINKLAYER_ETHERNET`.
const LINKLAYER_ETHERNET: u8 = 1;
/// `sizeof(struct tc_ratespec)`.
const RATESPEC_LEN: usize = 12;
/// `sizeof(struct tc_tbf_qopt)`: rate, peakrate, limit, buffer, mtu.
const QOPT_LEN: usize = 2 * RATESPEC_LEN + 12;
/// The kernel's psched tick is 64 ns (`PSCHED_SHIFT` 6).
const NS_PER_TICK: u64 = 64;
/// The queue holds about this much of the rate.
const QUEUE_MS: u64 = 50;

/// A TBF qdisc's settings, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tbf {
    /// Bytes per second.
    pub rate: u64,
    /// The bucket: bytes that may leave at once.
    pub burst: u32,
    /// Bytes that may wait in the queue.
    pub limit: u32,
}

impl Tbf {
    /// The cap for `bits_per_second` on a device of MTU `mtu`: a bucket of
    /// 4 ms of the rate but at least two full frames and one more, and a
    /// queue of about 50 ms on top of it.
    pub(crate) fn for_rate(bits_per_second: u64, mtu: u32) -> Tbf {
        let rate = (bits_per_second / 8).max(1);
        let frame = u64::from(mtu) + 14;
        let burst = (rate / 250).max(2 * frame + 1514);
        let limit = rate * QUEUE_MS / 1000 + burst;
        Tbf {
            rate,
            burst: u32::try_from(burst).unwrap_or(u32::MAX),
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
        }
    }

    /// The rate in bits per second.
    pub(crate) fn bits_per_second(&self) -> u64 {
        self.rate.saturating_mul(8)
    }

    /// TCA_OPTIONS' content: TCA_TBF_PARMS, TCA_TBF_BURST, maybe
    /// TCA_TBF_RATE64.
    fn options(&self) -> Vec<TcOption> {
        let mut qopt = [0u8; QOPT_LEN];
        // rate: cell_log, linklayer, overhead, cell_align, mpu, rate.
        qopt[1] = LINKLAYER_ETHERNET;
        let rate32 = u32::try_from(self.rate).unwrap_or(u32::MAX);
        qopt[8..12].copy_from_slice(&rate32.to_ne_bytes());
        // peakrate: all zeros (none).
        let at = 2 * RATESPEC_LEN;
        qopt[at..at + 4].copy_from_slice(&self.limit.to_ne_bytes());
        qopt[at + 4..at + 8].copy_from_slice(&self.buffer_ticks().to_ne_bytes());
        // mtu: only with a peak rate.
        let mut options = vec![
            TcOption::Other(DefaultNla::new(TCA_TBF_PARMS, qopt.to_vec())),
            TcOption::Other(DefaultNla::new(
                TCA_TBF_BURST,
                self.burst.to_ne_bytes().to_vec(),
            )),
        ];
        if self.rate > u64::from(u32::MAX) {
            options.push(TcOption::Other(DefaultNla::new(
                TCA_TBF_RATE64,
                self.rate.to_ne_bytes().to_vec(),
            )));
        }
        options
    }

    /// The bucket as the time it takes at the rate, in psched ticks (what
    /// `tc` sends; the kernel prefers TCA_TBF_BURST).
    fn buffer_ticks(&self) -> u32 {
        let ns = u128::from(self.burst) * 1_000_000_000 / u128::from(self.rate.max(1));
        u32::try_from(ns / u128::from(NS_PER_TICK)).unwrap_or(u32::MAX)
    }
}

/// RTM_NEWQDISC's body: a TBF root qdisc of `ifindex`.
fn tbf_message(ifindex: u32, tbf: &Tbf) -> TcMessage {
    let mut msg = root_message(ifindex);
    msg.attributes.push(TcAttribute::Kind(TBF.to_owned()));
    msg.attributes.push(TcAttribute::Options(tbf.options()));
    msg
}

/// The root qdisc of `ifindex`, the kernel choosing its handle.
fn root_message(ifindex: u32) -> TcMessage {
    let mut msg = TcMessage::default();
    msg.header.family = AddressFamily::Unspec;
    msg.header.index = i32::try_from(ifindex).unwrap_or(i32::MAX);
    msg.header.handle = TcHandle::UNSPEC;
    msg.header.parent = TcHandle::ROOT;
    msg
}

/// The nested attributes of `bytes`, as (type, value).
fn attributes(mut bytes: &[u8]) -> Vec<(u16, &[u8])> {
    let mut found = Vec::new();
    while bytes.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([bytes[0], bytes[1]]));
        let kind = u16::from_ne_bytes([bytes[2], bytes[3]]) & 0x3fff;
        if len < 4 || len > bytes.len() {
            break;
        }
        found.push((kind, &bytes[4..len]));
        let next = (len + 3) & !3;
        bytes = bytes.get(next..).unwrap_or(&[]);
    }
    found
}

/// A dumped TBF qdisc's settings, from its TCA_OPTIONS as parsed by
/// netlink-packet-route (one raw attribute for a kind it does not know).
fn read_tbf(msg: &TcMessage) -> Option<Tbf> {
    let mut is_tbf = false;
    let mut raw = None;
    for attr in &msg.attributes {
        match attr {
            TcAttribute::Kind(k) => is_tbf = k == TBF,
            TcAttribute::Options(options) => {
                if let [TcOption::Other(nla)] = options.as_slice() {
                    let mut value = vec![0; nla.value_len()];
                    nla.emit_value(&mut value);
                    raw = Some(value);
                }
            }
            _ => {}
        }
    }
    if !is_tbf {
        return None;
    }
    let raw = raw?;
    let mut rate = None;
    let mut rate64 = None;
    let mut limit = 0;
    let mut burst = 0;
    for (kind, value) in attributes(&raw) {
        match kind {
            TCA_TBF_PARMS if value.len() >= QOPT_LEN => {
                rate = Some(u64::from(u32::from_ne_bytes(value[8..12].try_into().ok()?)));
                let at = 2 * RATESPEC_LEN;
                limit = u32::from_ne_bytes(value[at..at + 4].try_into().ok()?);
            }
            TCA_TBF_RATE64 if value.len() >= 8 => {
                rate64 = Some(u64::from_ne_bytes(value[..8].try_into().ok()?));
            }
            TCA_TBF_BURST if value.len() >= 4 => {
                burst = u32::from_ne_bytes(value[..4].try_into().ok()?);
            }
            _ => {}
        }
    }
    Some(Tbf {
        rate: rate64.or(rate)?,
        burst,
        limit,
    })
}

impl Netplane {
    /// `tc qdisc replace dev LINK root tbf rate R burst B limit L`: caps
    /// what `link` sends at `bits_per_second` (a bucket of 4 ms of the rate,
    /// at least two frames, and a queue of about 50 ms). Replaces whatever
    /// root qdisc the link had.
    pub async fn set_rate(&self, link: &str, bits_per_second: u64) -> Result<(), Error> {
        let action = format!("capping {link} at {bits_per_second} bit/s");
        let Some(info) = self.link(link).await? else {
            return Err(Error::NoSuchLink {
                action,
                namespace: self.namespace.clone(),
                link: link.to_owned(),
            });
        };
        let tbf = Tbf::for_rate(bits_per_second, info.mtu.unwrap_or(1500));
        tracing::debug!(netns = ?self.namespace, ?tbf, "{action}");
        self.acked(
            &action,
            RouteNetlinkMessage::NewQueueDiscipline(tbf_message(info.index, &tbf)),
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        )
        .await
    }

    /// `tc qdisc del dev LINK root` when that root qdisc is a TBF: an absent
    /// cap (another or the default qdisc, or no such link) is
    /// [`Removed::WasAbsent`].
    pub async fn clear_rate(&self, link: &str) -> Result<Removed, Error> {
        let action = format!("removing the rate cap of {link}");
        let index = match self.index_of(&action, link).await {
            Ok(i) => i,
            Err(Error::NoSuchLink { .. }) => return Ok(Removed::WasAbsent),
            Err(e) => return Err(e),
        };
        if self.tbf_of(&action, index).await?.is_none() {
            return Ok(Removed::WasAbsent);
        }
        tracing::debug!(netns = ?self.namespace, "{action}");
        match self
            .acked(
                &action,
                RouteNetlinkMessage::DelQueueDiscipline(root_message(index)),
                NLM_F_REQUEST | NLM_F_ACK,
            )
            .await
        {
            Ok(()) => Ok(Removed::Deleted),
            Err(Error::Kernel { errno, .. }) if errno == ENOENT => Ok(Removed::WasAbsent),
            Err(e) => Err(e),
        }
    }

    /// The rate cap of `link` in bits per second: the rate of its TBF root
    /// qdisc, `None` without one.
    pub async fn rate(&self, link: &str) -> Result<Option<u64>, Error> {
        let action = format!("reading the rate cap of {link}");
        let index = self.index_of(&action, link).await?;
        Ok(self
            .tbf_of(&action, index)
            .await?
            .map(|t| t.bits_per_second()))
    }

    /// The TBF root qdisc of `index`, if it has one.
    async fn tbf_of(&self, action: &str, index: u32) -> Result<Option<Tbf>, Error> {
        let mut req =
            NetlinkMessage::from(RouteNetlinkMessage::GetQueueDiscipline(TcMessage::default()));
        req.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        let mut handle = self.handle.clone();
        let mut answers = handle
            .request(req)
            .map_err(|e| self.err(action.to_owned(), e))?;
        let mut found = None;
        while let Some(answer) = answers.next().await {
            match answer.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewQueueDiscipline(m))
                    if u32::try_from(m.header.index).ok() == Some(index)
                        && m.header.parent == TcHandle::ROOT =>
                {
                    found = found.or(read_tbf(&m));
                }
                NetlinkPayload::Error(e) => {
                    return Err(self.err(action.to_owned(), rtnetlink::Error::NetlinkError(e)));
                }
                _ => {}
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use rtnetlink::packet_core::Emitable;

    use super::*;

    #[test]
    fn a_cap_has_a_bucket_of_4ms_or_two_frames_and_a_queue_of_50ms() {
        let t = Tbf::for_rate(100_000_000, 1450);
        assert_eq!(t.rate, 12_500_000);
        assert_eq!(t.burst, 50_000);
        assert_eq!(t.limit, 625_000 + 50_000);
        assert_eq!(t.bits_per_second(), 100_000_000);
        // Slow: the bucket still holds two full frames and one more.
        let slow = Tbf::for_rate(1_000_000, 1450);
        assert_eq!(slow.burst, 2 * 1464 + 1514);
        assert_eq!(slow.limit, 6_250 + 2 * 1464 + 1514);
    }

    #[test]
    fn the_message_is_a_root_tbf_with_parms_and_burst() {
        let t = Tbf::for_rate(20_000_000, 1450);
        let m = tbf_message(7, &t);
        assert_eq!(m.header.index, 7);
        assert_eq!(m.header.parent, TcHandle::ROOT);
        assert_eq!(m.header.handle, TcHandle::UNSPEC);
        assert!(m.attributes.contains(&TcAttribute::Kind("tbf".into())));
        let mut bytes = vec![0; m.buffer_len()];
        m.emit(&mut bytes);
        // tcmsg (20 bytes), then TCA_KIND "tbf\0" (8), then TCA_OPTIONS.
        assert_eq!(&bytes[20..28], &[8, 0, 1, 0, b't', b'b', b'f', 0]);
        let opts = attributes(&bytes[28..]);
        assert_eq!(opts.len(), 1);
        assert_eq!(opts[0].0, 2, "TCA_OPTIONS");
        let inner = attributes(opts[0].1);
        assert_eq!(inner.len(), 2, "no TCA_TBF_RATE64 below 4 GiB/s");
        let (kind, parms) = inner[0];
        assert_eq!(kind, TCA_TBF_PARMS);
        assert_eq!(parms.len(), 36);
        assert_eq!(parms[1], LINKLAYER_ETHERNET);
        assert_eq!(&parms[8..12], &2_500_000u32.to_ne_bytes());
        assert!(parms[12..24].iter().all(|b| *b == 0), "no peak rate");
        assert_eq!(&parms[24..28], &t.limit.to_ne_bytes());
        // 10 000 bytes at 2.5 MB/s: 4 ms, 62 500 ticks of 64 ns.
        assert_eq!(&parms[28..32], &62_500u32.to_ne_bytes());
        assert_eq!(inner[1], (TCA_TBF_BURST, &10_000u32.to_ne_bytes()[..]));
    }

    #[test]
    fn fast_rates_go_in_rate64_and_read_back() {
        let t = Tbf::for_rate(40_000_000_000, 1500);
        assert_eq!(t.rate, 5_000_000_000);
        let options = t.options();
        assert_eq!(options.len(), 3);
        let mut bytes = vec![0; options.as_slice().buffer_len()];
        options.as_slice().emit(&mut bytes);
        let inner = attributes(&bytes);
        assert_eq!(&inner[0].1[8..12], &u32::MAX.to_ne_bytes());
        assert_eq!(
            inner[2],
            (TCA_TBF_RATE64, &5_000_000_000u64.to_ne_bytes()[..])
        );
        // As a dump shows it: one raw TCA_OPTIONS attribute.
        let mut dumped = root_message(7);
        dumped.attributes.push(TcAttribute::Kind("tbf".into()));
        dumped
            .attributes
            .push(TcAttribute::Options(vec![TcOption::Other(
                DefaultNla::new(2, bytes),
            )]));
        assert_eq!(read_tbf(&dumped), Some(t));
        let mut other = dumped.clone();
        other.attributes[0] = TcAttribute::Kind("fq_codel".into());
        assert_eq!(read_tbf(&other), None);
    }
}
