//! The typed constraint request, its validation and its parsing from the
//! strings a command line hands over (`--min-replication 3 --region EU
//! --max-price 0.02EUR`).

use super::areas;
use std::fmt;
use std::str::FromStr;

/// Highest replication factor a request may ask for.
pub const MAX_REPLICATION: u32 = 10;

/// The kind of service a request looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceKind {
    /// `ic:ComputeService`: virtual machines.
    Compute,
    /// `ic:StorageService`: storage in classes.
    Storage,
    /// `ic:NetworkService`: VNets between clouds.
    Network,
    /// `ic:MonitoringService`.
    Monitoring,
    /// `ic:TimeService`.
    Time,
}

impl ServiceKind {
    /// Local name of the ontology class of this kind.
    pub fn class_name(self) -> &'static str {
        match self {
            Self::Compute => "ComputeService",
            Self::Storage => "StorageService",
            Self::Network => "NetworkService",
            Self::Monitoring => "MonitoringService",
            Self::Time => "TimeService",
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Compute => "compute",
            Self::Storage => "storage",
            Self::Network => "network",
            Self::Monitoring => "monitoring",
            Self::Time => "time",
        }
    }
}

impl fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServiceKind {
    type Err = RequestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "compute" => Ok(Self::Compute),
            "storage" => Ok(Self::Storage),
            "network" => Ok(Self::Network),
            "monitoring" => Ok(Self::Monitoring),
            "time" => Ok(Self::Time),
            _ => Err(RequestError::invalid(
                "kind",
                s,
                "expected compute, storage, network, monitoring or time",
            )),
        }
    }
}

/// Consistency a storage class guarantees (`ic:Strong`, `ic:Eventual`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Consistency {
    /// `ic:Strong`.
    Strong,
    /// `ic:Eventual`.
    Eventual,
}

impl Consistency {
    /// Local name of the ontology individual.
    pub fn individual_name(self) -> &'static str {
        match self {
            Self::Strong => "Strong",
            Self::Eventual => "Eventual",
        }
    }
}

impl fmt::Display for Consistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Strong => "strong",
            Self::Eventual => "eventual",
        })
    }
}

impl FromStr for Consistency {
    type Err = RequestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "strong" => Ok(Self::Strong),
            "eventual" => Ok(Self::Eventual),
            _ => Err(RequestError::invalid(
                "consistency",
                s,
                "expected strong or eventual",
            )),
        }
    }
}

/// Encapsulation a network service supports (`ic:VXLAN`, `ic:VLAN`, `ic:GRE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encapsulation {
    /// `ic:VXLAN`.
    Vxlan,
    /// `ic:VLAN`.
    Vlan,
    /// `ic:GRE`.
    Gre,
}

impl Encapsulation {
    /// Local name of the ontology individual.
    pub fn individual_name(self) -> &'static str {
        match self {
            Self::Vxlan => "VXLAN",
            Self::Vlan => "VLAN",
            Self::Gre => "GRE",
        }
    }
}

impl fmt::Display for Encapsulation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.individual_name())
    }
}

impl FromStr for Encapsulation {
    type Err = RequestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "VXLAN" => Ok(Self::Vxlan),
            "VLAN" => Ok(Self::Vlan),
            "GRE" => Ok(Self::Gre),
            _ => Err(RequestError::invalid(
                "encapsulation",
                s,
                "expected VXLAN, VLAN or GRE",
            )),
        }
    }
}

/// Where the service must run: one country or an area of the ontology.
///
/// Area codes win over country codes: "NA" is North America, not Namibia.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RegionFilter {
    /// An ISO 3166-1 alpha-2 country code, e.g. "DE".
    Country(String),
    /// An area code the ontology defines with `ic:areaCode`, e.g. "EU".
    Area(String),
}

impl RegionFilter {
    /// The countries this filter admits, or an error naming the bad code.
    pub fn countries(&self) -> Result<Vec<String>, RequestError> {
        match self {
            Self::Country(code) => {
                if is_upper_ascii(code, 2) {
                    Ok(vec![code.clone()])
                } else {
                    Err(RequestError::invalid(
                        "region",
                        code,
                        "a country must be an ISO 3166-1 alpha-2 code (two letters A-Z)",
                    ))
                }
            }
            Self::Area(code) => areas::countries_of(code)
                .map(|countries| countries.iter().cloned().collect())
                .ok_or_else(|| RequestError::invalid("region", code, &unknown_area_reason())),
        }
    }

    /// The code as the user wrote it (upper case).
    pub fn code(&self) -> &str {
        match self {
            Self::Country(code) | Self::Area(code) => code,
        }
    }
}

fn unknown_area_reason() -> String {
    let known: Vec<&str> = areas::areas().keys().map(String::as_str).collect();
    format!("unknown area; known areas: {}", known.join(", "))
}

impl fmt::Display for RegionFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for RegionFilter {
    type Err = RequestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let code = s.trim().to_ascii_uppercase();
        if areas::countries_of(&code).is_some() {
            return Ok(Self::Area(code));
        }
        let filter = if code.len() == 2 {
            Self::Country(code)
        } else {
            Self::Area(code)
        };
        // Resolve now so a bad code is refused where it was typed.
        filter.countries().map_err(|_| {
            RequestError::invalid(
                "region",
                s,
                &format!(
                    "expected an ISO 3166-1 alpha-2 country code or an area code ({})",
                    areas::areas()
                        .keys()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        Ok(filter)
    }
}

/// An amount of money in an ISO 4217 currency.
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    /// The amount, 0 or more.
    pub amount: f64,
    /// ISO 4217 code, three letters A-Z.
    pub currency: String,
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

impl FromStr for Price {
    type Err = RequestError;

    /// "0.02EUR", "0.02 EUR" or "EUR 0.02".
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        let (amount, currency) = if trimmed.starts_with(|c: char| c.is_ascii_alphabetic()) {
            let split = trimmed
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(trimmed.len());
            let (currency, amount) = trimmed.split_at(split);
            (amount, currency)
        } else {
            let split = trimmed
                .find(|c: char| c.is_ascii_alphabetic())
                .unwrap_or(trimmed.len());
            trimmed.split_at(split)
        };
        let bad = |reason: &str| RequestError::invalid("max_price", s, reason);
        let amount: f64 = amount
            .trim()
            .parse()
            .map_err(|_| bad("expected an amount and a currency, e.g. 0.02EUR"))?;
        let price = Price {
            amount,
            currency: currency.trim().to_owned(),
        };
        price.check()?;
        Ok(price)
    }
}

impl Price {
    fn check(&self) -> Result<(), RequestError> {
        if !self.amount.is_finite() || self.amount < 0.0 {
            return Err(RequestError::invalid(
                "max_price",
                &self.amount.to_string(),
                "the amount must be a finite number, 0 or more",
            ));
        }
        if !is_upper_ascii(&self.currency, 3) {
            return Err(RequestError::invalid(
                "max_price",
                &self.currency,
                "the currency must be an ISO 4217 code (three letters A-Z)",
            ));
        }
        Ok(())
    }
}

fn is_upper_ascii(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_uppercase())
}

/// A request for services that meet hard constraints; `None` means "any".
#[derive(Debug, Clone, PartialEq)]
pub struct MatchRequest {
    /// The kind of service wanted.
    pub kind: ServiceKind,
    /// Storage: lowest acceptable `ic:replicationFactor` (1..=10).
    pub min_replication: Option<u32>,
    /// Storage: lowest acceptable `ic:durabilityNines` (0..=20).
    pub min_durability_nines: Option<f64>,
    /// Storage: required `ic:consistency`.
    pub consistency: Option<Consistency>,
    /// Country or area the service must be located in.
    pub region: Option<RegionFilter>,
    /// Highest acceptable price, in this currency only. For storage it is
    /// the storage class's price, for compute the flavor's, otherwise the
    /// service's.
    pub max_price: Option<Price>,
    /// Lowest acceptable `ic:availabilityPercent` of the service's SLA (0..=100).
    pub min_availability: Option<f64>,
    /// Compute: a flavor with at least this many vCPUs (1 or more).
    pub min_vcpu: Option<u32>,
    /// Compute: a flavor with at least this much memory, in MiB (1 or more).
    pub min_memory_mib: Option<u64>,
    /// Network: a supported encapsulation.
    pub encapsulation: Option<Encapsulation>,
}

impl MatchRequest {
    /// A request for any service of this kind.
    pub fn new(kind: ServiceKind) -> Self {
        Self {
            kind,
            min_replication: None,
            min_durability_nines: None,
            consistency: None,
            region: None,
            max_price: None,
            min_availability: None,
            min_vcpu: None,
            min_memory_mib: None,
            encapsulation: None,
        }
    }

    /// Sets one constraint from its command-line name (`min-replication`,
    /// `min_replication` and `--min-replication` are all accepted) and its
    /// text value. The value is parsed here and the request is validated as
    /// a whole by [`MatchRequest::validate`].
    pub fn set(&mut self, key: &str, value: &str) -> Result<&mut Self, RequestError> {
        let field = key.trim_start_matches('-').replace('-', "_");
        match field.as_str() {
            "kind" => self.kind = value.parse()?,
            "min_replication" => {
                self.min_replication = Some(parse_number("min_replication", value)?);
            }
            "min_durability_nines" | "min_durability" => {
                self.min_durability_nines = Some(parse_number("min_durability_nines", value)?);
            }
            "consistency" => self.consistency = Some(value.parse()?),
            "region" => self.region = Some(value.parse()?),
            "max_price" => self.max_price = Some(value.parse()?),
            "min_availability" => {
                self.min_availability = Some(parse_number(
                    "min_availability",
                    value.trim().trim_end_matches('%'),
                )?);
            }
            "min_vcpu" => {
                self.min_vcpu = Some(parse_number("min_vcpu", value)?);
            }
            "min_memory_mib" | "min_memory" => {
                self.min_memory_mib = Some(parse_number("min_memory_mib", value)?);
            }
            "encapsulation" => self.encapsulation = Some(value.parse()?),
            _ => return Err(RequestError::UnknownConstraint { name: key.into() }),
        }
        Ok(self)
    }

    /// Builds a request from `(name, value)` pairs, then validates it.
    pub fn from_pairs<'a>(
        kind: ServiceKind,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, RequestError> {
        let mut request = Self::new(kind);
        for (key, value) in pairs {
            request.set(key, value)?;
        }
        request.validate()?;
        Ok(request)
    }

    /// Refuses malformed constraint values and constraints that do not apply
    /// to the requested kind; the error names the field and the bad value.
    pub fn validate(&self) -> Result<(), RequestError> {
        use ServiceKind::{Compute, Network, Storage};
        self.applies("min_replication", self.min_replication.is_some(), Storage)?;
        self.applies(
            "min_durability_nines",
            self.min_durability_nines.is_some(),
            Storage,
        )?;
        self.applies("consistency", self.consistency.is_some(), Storage)?;
        self.applies("min_vcpu", self.min_vcpu.is_some(), Compute)?;
        self.applies("min_memory_mib", self.min_memory_mib.is_some(), Compute)?;
        self.applies("encapsulation", self.encapsulation.is_some(), Network)?;

        if let Some(replication) = self.min_replication
            && !(1..=MAX_REPLICATION).contains(&replication)
        {
            return Err(RequestError::invalid(
                "min_replication",
                &replication.to_string(),
                "must be between 1 and 10",
            ));
        }
        if let Some(nines) = self.min_durability_nines {
            check_range("min_durability_nines", nines, 0.0, 20.0)?;
        }
        if let Some(region) = &self.region {
            region.countries()?;
        }
        if let Some(price) = &self.max_price {
            price.check()?;
        }
        if let Some(availability) = self.min_availability {
            check_range("min_availability", availability, 0.0, 100.0)?;
        }
        if self.min_vcpu == Some(0) {
            return Err(RequestError::invalid("min_vcpu", "0", "must be 1 or more"));
        }
        if self.min_memory_mib == Some(0) {
            return Err(RequestError::invalid(
                "min_memory_mib",
                "0",
                "must be 1 or more",
            ));
        }
        Ok(())
    }

    fn applies(
        &self,
        field: &'static str,
        present: bool,
        kind: ServiceKind,
    ) -> Result<(), RequestError> {
        if present && self.kind != kind {
            return Err(RequestError::NotApplicable {
                field,
                kind: self.kind,
            });
        }
        Ok(())
    }
}

fn parse_number<T: FromStr>(field: &'static str, value: &str) -> Result<T, RequestError> {
    value
        .trim()
        .parse()
        .map_err(|_| RequestError::invalid(field, value, "expected a number"))
}

fn check_range(field: &'static str, value: f64, low: f64, high: f64) -> Result<(), RequestError> {
    if value.is_finite() && (low..=high).contains(&value) {
        Ok(())
    } else {
        Err(RequestError::invalid(
            field,
            &value.to_string(),
            &format!("must be a number between {low} and {high}"),
        ))
    }
}

/// A constraint request that cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// A constraint's value is malformed or out of range.
    #[error("{field}: invalid value {value:?}: {reason}")]
    InvalidValue {
        /// The constraint, as named in [`MatchRequest`].
        field: &'static str,
        /// The value as given.
        value: String,
        /// What a valid value looks like.
        reason: String,
    },
    /// A constraint that means nothing for the requested kind of service.
    #[error("{field}: does not apply to {kind} services")]
    NotApplicable {
        /// The constraint, as named in [`MatchRequest`].
        field: &'static str,
        /// The kind requested.
        kind: ServiceKind,
    },
    /// A constraint name [`MatchRequest::set`] does not know.
    #[error("unknown constraint {name:?}")]
    UnknownConstraint {
        /// The name as given.
        name: String,
    },
}

impl RequestError {
    fn invalid(field: &'static str, value: &str, reason: &str) -> Self {
        Self::InvalidValue {
            field,
            value: value.to_owned(),
            reason: reason.to_owned(),
        }
    }

    /// The constraint the error is about, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidValue { field, .. } | Self::NotApplicable { field, .. } => Some(field),
            Self::UnknownConstraint { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_parse_in_the_forms_a_cli_user_types() {
        for text in ["0.02EUR", "0.02 EUR", "EUR 0.02", " EUR0.02 "] {
            let price: Price = text.parse().expect(text);
            assert_eq!(
                price,
                Price {
                    amount: 0.02,
                    currency: "EUR".into()
                }
            );
        }
    }

    #[test]
    fn regions_resolve_to_areas_first() {
        assert_eq!(
            "eu".parse::<RegionFilter>(),
            Ok(RegionFilter::Area("EU".into()))
        );
        assert_eq!(
            "NA".parse::<RegionFilter>(),
            Ok(RegionFilter::Area("NA".into()))
        );
        assert_eq!(
            "de".parse::<RegionFilter>(),
            Ok(RegionFilter::Country("DE".into()))
        );
        let eea = RegionFilter::Area("EEA".into()).countries().expect("EEA");
        assert!(eea.contains(&"NO".to_owned()));
    }

    #[test]
    fn errors_name_the_field_and_the_value() {
        let mut r = MatchRequest::new(ServiceKind::Storage);
        let error = r.set("--min-replication", "0").and_then(|r| r.validate());
        assert_eq!(
            error.map_err(|e| e.to_string()),
            Err("min_replication: invalid value \"0\": must be between 1 and 10".into())
        );
    }
}
