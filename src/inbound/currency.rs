//! ISO 4217 currency-code validation for postback `currency` values.
//!
//! Networks send currency codes in whatever case they like (Keitaro's own docs show `usd`,
//! `eur`), sometimes with stray whitespace, and occasionally send junk. Storing an unvalidated
//! code would silently split reports ("usd" vs "USD") or let garbage into sums, so every code
//! goes through [`normalize`] before it is stored.
//!
//! The list is ISO 4217 List One as of mid-2025, restricted to codes that name money a
//! conversion can actually be paid in:
//!
//! * Fund codes (BOV, CHE, CHW, CLF, COU, MXV, USN, UYI, UYW) are left out: they are
//!   accounting units, and no affiliate network pays commission in them.
//! * X-codes that are not currencies are left out: precious metals (XAU, XAG, XPD, XPT),
//!   bond-market and settlement units (XBA–XBD, XDR, XSU, XUA), and the test/"no currency"
//!   codes XTS and XXX. XTS in particular must not validate, or a network's test postback
//!   would be recorded as real revenue in a currency no exchange rate exists for.
//! * X-codes that *are* circulating currencies stay in: XAF, XCD, XCG, XOF, XPF.
//! * Withdrawn codes are out even if some networks still emit them for a while: HRK (Croatia
//!   adopted EUR in 2023), CUC, ZWL (replaced by ZWG in 2024), SLL (replaced by SLE) and ANG
//!   (replaced by XCG in 2025). If a network keeps sending one of these, this list is the place
//!   to make an explicit, commented exception.
//! * BGN is still in: Bulgaria adopted the euro on 2026-01-01, but networks keep settling
//!   conversions made before the switch in leva for a while. Drop it once ISO withdraws it.

/// Active ISO 4217 alphabetic codes, sorted so [`is_iso4217`] can binary-search them.
/// The `codes_are_sorted_and_well_formed` test guards the ordering.
const CODES: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN",
    "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF",
    "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP",
    "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD",
    "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY",
    "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD",
    "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK",
    "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK",
    "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG",
    "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS",
    "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VED",
    "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

/// True when `code` is exactly three ASCII letters (any case) naming an active currency.
///
/// No trimming here on purpose: callers that want leniency use [`normalize`], so that code
/// which checks an already-normalized value can't accidentally accept padded input.
pub fn is_iso4217(code: &str) -> bool {
    let bytes = code.as_bytes();
    if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
        return false;
    }
    // Uppercase into a fixed buffer to avoid allocating on the hot postback path.
    let upper = [
        bytes[0].to_ascii_uppercase(),
        bytes[1].to_ascii_uppercase(),
        bytes[2].to_ascii_uppercase(),
    ];
    match std::str::from_utf8(&upper) {
        Ok(s) => CODES.binary_search(&s).is_ok(),
        Err(_) => false,
    }
}

/// Trims, uppercases and validates a currency code; `None` if it is not an active code.
pub fn normalize(code: &str) -> Option<String> {
    let trimmed = code.trim();
    if is_iso4217(trimmed) {
        Some(trimmed.to_ascii_uppercase())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_sorted_and_well_formed() {
        // Binary search silently misses entries if the list is out of order.
        for pair in CODES.windows(2) {
            assert!(
                pair[0] < pair[1],
                "{} must sort before {}",
                pair[0],
                pair[1]
            );
        }
        for code in CODES {
            assert_eq!(code.len(), 3, "{code}");
            assert!(code.bytes().all(|b| b.is_ascii_uppercase()), "{code}");
        }
    }

    #[test]
    fn accepts_common_codes_in_any_case() {
        for code in [
            "USD", "EUR", "GBP", "JPY", "BRL", "INR", "AUD", "CAD", "CHF", "CNY", "SEK", "NOK",
            "DKK", "PLN", "MXN", "ZAR", "TRY", "KRW", "XOF", "XAF", "XCD", "XPF", "XCG", "ZWG",
            "SLE", "VES", "VED",
        ] {
            assert!(is_iso4217(code), "{code}");
            assert!(is_iso4217(&code.to_ascii_lowercase()), "{code} lowercase");
        }
        assert!(is_iso4217("uSd"));
    }

    #[test]
    fn rejects_non_currencies() {
        for code in [
            "XXX", "XTS", "XAU", "XAG", "XPT", "XPD", "XDR", "XBA", "XSU", "XUA", // X-codes
            "BOV", "CHE", "CHW", "CLF", "COU", "MXV", "USN", "UYI", "UYW", // fund codes
            "HRK", "ZWL", "CUC", "SLL", "ANG", "DEM", "FRF", "VEF", "MRO", // withdrawn
            "ABC", "QQQ", "BTC", "USDT", // not ISO
        ] {
            assert!(!is_iso4217(code), "{code}");
        }
    }

    #[test]
    fn rejects_malformed_input() {
        for code in [
            "", "US", "USDD", " USD", "USD ", "U5D", "US-", "ÜSD", "€", "usd\n",
        ] {
            assert!(!is_iso4217(code), "{code:?}");
        }
    }

    #[test]
    fn normalize_trims_uppercases_and_validates() {
        assert_eq!(normalize("usd").as_deref(), Some("USD"));
        assert_eq!(normalize("  eur\t").as_deref(), Some("EUR"));
        assert_eq!(normalize("Gbp").as_deref(), Some("GBP"));
        assert_eq!(normalize("xts"), None);
        assert_eq!(normalize("dollars"), None);
        assert_eq!(normalize("   "), None);
        assert_eq!(normalize(""), None);
    }
}
