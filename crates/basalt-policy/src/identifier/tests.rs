//! Tests of the identifier policy, with the battery of issue cases.

use super::*;

fn kind_of(id: &Identifier) -> Option<ErrorKind> {
    check_identifier(id).err().map(|err| err.kind)
}

#[test]
fn dns_name_rules() {
    let long_label = "a".repeat(64);
    let label_63 = "a".repeat(63);
    let ok_long = format!("{label_63}.{label_63}.{label_63}.{}.com", "a".repeat(57));
    assert_eq!(ok_long.len(), 253);
    let too_long = format!("a{ok_long}");
    let cases: Vec<(String, Option<ErrorKind>)> = vec![
        ("example.com".into(), None),
        ("a.b.c.example.co.uk".into(), None),
        ("xn--bcher-kva.example".into(), None),
        ("a-b.example".into(), None),
        ("1.example.com".into(), None),
        (format!("{label_63}.com"), None),
        (ok_long, None),
        (too_long, Some(ErrorKind::Malformed)),
        (format!("{long_label}.com"), Some(ErrorKind::Malformed)),
        ("Example.com".into(), Some(ErrorKind::RejectedIdentifier)),
        ("".into(), Some(ErrorKind::Malformed)),
        ("com".into(), Some(ErrorKind::Malformed)),
        ("example.com.".into(), Some(ErrorKind::Malformed)),
        ("example..com".into(), Some(ErrorKind::Malformed)),
        (".example.com".into(), Some(ErrorKind::Malformed)),
        ("-a.example".into(), Some(ErrorKind::Malformed)),
        ("a-.example".into(), Some(ErrorKind::Malformed)),
        ("ab--c.example".into(), Some(ErrorKind::Malformed)),
        ("xn--.example".into(), Some(ErrorKind::Malformed)),
        ("a_b.example".into(), Some(ErrorKind::Malformed)),
        ("a b.example".into(), Some(ErrorKind::Malformed)),
        ("bücher.example".into(), Some(ErrorKind::Malformed)),
        ("1.2.3.4".into(), Some(ErrorKind::Malformed)),
        ("example.123".into(), Some(ErrorKind::Malformed)),
        ("*.example.com".into(), None),
        ("*".into(), Some(ErrorKind::Malformed)),
        ("*.com".into(), Some(ErrorKind::Malformed)),
        ("**.example.com".into(), Some(ErrorKind::Malformed)),
        ("*.*.example.com".into(), Some(ErrorKind::Malformed)),
        ("a.*.example.com".into(), Some(ErrorKind::Malformed)),
        ("a*.example.com".into(), Some(ErrorKind::Malformed)),
    ];
    for (name, want) in cases {
        assert_eq!(kind_of(&Identifier::dns(name.clone())), want, "{name:?}");
    }
}

#[test]
fn uppercase_details_say_why() {
    let err = check_identifier(&Identifier::dns("WWW.example.com")).unwrap_err();
    assert!(err.detail.contains("lowercase"), "{}", err.detail);
}

#[test]
fn ip_identifiers_must_be_canonical() {
    let cases = [
        ("192.0.2.1", None),
        ("2001:db8::1", None),
        ("::1", None),
        ("2001:DB8::1", Some(ErrorKind::Malformed)),
        ("2001:db8:0::1", Some(ErrorKind::Malformed)),
        ("192.0.2.01", Some(ErrorKind::Malformed)),
        (" 192.0.2.1", Some(ErrorKind::Malformed)),
        ("example.com", Some(ErrorKind::Malformed)),
        ("", Some(ErrorKind::Malformed)),
    ];
    for (value, want) in cases {
        assert_eq!(kind_of(&Identifier::ip(value)), want, "{value:?}");
    }
}

#[test]
fn policy_sorts_and_dedups() {
    let policy = IdentifierPolicy::default();
    let ids = vec![
        Identifier::dns("b.example"),
        Identifier::dns("a.example"),
        Identifier::dns("b.example"),
    ];
    assert_eq!(
        policy.check(&ids).unwrap(),
        vec![Identifier::dns("a.example"), Identifier::dns("b.example")]
    );
}

#[test]
fn policy_refuses_empty_and_too_many() {
    let policy = IdentifierPolicy {
        max_names: 2,
        ..IdentifierPolicy::default()
    };
    assert_eq!(policy.check(&[]).unwrap_err().kind, ErrorKind::Malformed);
    let three: Vec<Identifier> = ["a.example", "b.example", "c.example"]
        .into_iter()
        .map(Identifier::dns)
        .collect();
    let err = policy.check(&three).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
    assert!(err.detail.contains("at most 2"), "{}", err.detail);
    // Duplicates do not count against the limit.
    let dups = vec![Identifier::dns("a.example"); 5];
    assert_eq!(policy.check(&dups).unwrap().len(), 1);
}

#[test]
fn policy_gates_ip_identifiers() {
    let ip = [Identifier::ip("192.0.2.1")];
    let err = IdentifierPolicy::default().check(&ip).unwrap_err();
    assert_eq!(err.kind, ErrorKind::RejectedIdentifier);
    assert_eq!(err.subproblems.len(), 1);
    assert_eq!(err.subproblems[0].detail, "IP identifiers are not enabled");
    let allowing = IdentifierPolicy {
        allow_ip_identifiers: true,
        ..IdentifierPolicy::default()
    };
    assert_eq!(allowing.check(&ip).unwrap(), ip.to_vec());
    // Enabling IPs does not relax their syntax.
    let err = allowing
        .check(&[Identifier::ip("192.0.2.001")])
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
}

#[test]
fn policy_collects_one_subproblem_per_bad_identifier() {
    let ids = [
        Identifier::dns("good.example"),
        Identifier::dns("Bad.example"),
        Identifier::dns("bad..example"),
        Identifier::ip("192.0.2.1"),
    ];
    let err = IdentifierPolicy::default().check(&ids).unwrap_err();
    assert_eq!(err.kind, ErrorKind::RejectedIdentifier);
    // Sorted as the identifiers are: DNS names first.
    let bad: Vec<(&str, ErrorKind)> = err
        .subproblems
        .iter()
        .map(|p| (p.identifier.value.as_str(), p.kind))
        .collect();
    assert_eq!(
        bad,
        vec![
            ("Bad.example", ErrorKind::RejectedIdentifier),
            ("bad..example", ErrorKind::Malformed),
            ("192.0.2.1", ErrorKind::RejectedIdentifier),
        ]
    );
    assert!(err.detail.contains("2 more problems"), "{}", err.detail);
}

#[test]
fn policy_keeps_a_common_kind() {
    let ids = [Identifier::dns("a..example"), Identifier::dns("-b.example")];
    let err = IdentifierPolicy::default().check(&ids).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
    assert_eq!(err.subproblems.len(), 2);
}

/// A public CA's rules: known TLDs only, no reserved IPs, IP identifiers on.
fn public() -> IdentifierPolicy {
    IdentifierPolicy {
        allow_ip_identifiers: true,
        require_known_tld: true,
        allow_reserved_ips: false,
        block: vec!["evil.com".into()],
        ..IdentifierPolicy::default()
    }
}

/// A private CA's rules: only names under corp.example, but not bad.corp.example.
fn private() -> IdentifierPolicy {
    IdentifierPolicy {
        allow: vec!["corp.example".into()],
        block: vec!["bad.corp.example".into()],
        ..IdentifierPolicy::default()
    }
}

/// One identifier the policy refuses, the problem type it gets and a piece of the
/// subproblem's detail.
struct Refused {
    policy: IdentifierPolicy,
    id: Identifier,
    kind: ErrorKind,
    detail: &'static str,
}

fn refused(
    policy: &IdentifierPolicy,
    id: Identifier,
    kind: ErrorKind,
    detail: &'static str,
) -> Refused {
    Refused {
        policy: policy.clone(),
        id,
        kind,
        detail,
    }
}

#[test]
fn battery_of_refused_identifiers() {
    use ErrorKind::{Malformed, RejectedIdentifier};
    let public = public();
    let dns_only = IdentifierPolicy {
        allow_ip_identifiers: false,
        ..public.clone()
    };
    let private = private();
    let dns = |name: &str| Identifier::dns(name);
    let ip = |value: &str| Identifier::ip(value);
    let label_64 = "a".repeat(64);
    let name_254 = format!(
        "{}.{}.{}.{}.com",
        "a".repeat(63),
        "a".repeat(63),
        "a".repeat(63),
        "a".repeat(58)
    );
    assert_eq!(name_254.len(), 254);
    let cases = vec![
        // LDH.
        refused(
            &public,
            dns("a_b.example.com"),
            Malformed,
            "invalid character",
        ),
        refused(
            &public,
            dns("a b.example.com"),
            Malformed,
            "invalid character",
        ),
        refused(&public, dns("-a.example.com"), Malformed, "hyphen"),
        refused(&public, dns("a-.example.com"), Malformed, "hyphen"),
        refused(
            &public,
            dns("ab--c.example.com"),
            Malformed,
            "third and fourth",
        ),
        refused(&public, dns("a..example.com"), Malformed, "empty label"),
        refused(&public, dns(".example.com"), Malformed, "empty label"),
        refused(&public, dns(""), Malformed, "empty"),
        refused(&public, dns("1.2.3.4"), Malformed, "all-numeric"),
        refused(&public, dns("example.123"), Malformed, "all-numeric"),
        // Lengths.
        refused(
            &public,
            dns(&format!("{label_64}.com")),
            Malformed,
            "label longer than 63",
        ),
        refused(&public, dns(&name_254), Malformed, "longer than 253"),
        // Case and the trailing dot.
        refused(
            &public,
            dns("WWW.example.com"),
            RejectedIdentifier,
            "lowercase",
        ),
        refused(
            &public,
            dns("www.Example.com"),
            RejectedIdentifier,
            "lowercase",
        ),
        refused(&public, dns("example.com."), Malformed, "end with a dot"),
        // IDN: A-labels only, and valid ones.
        refused(&public, dns("bücher.example.com"), Malformed, "non-ASCII"),
        refused(&public, dns("xn--.example.com"), Malformed, "hyphen"),
        refused(&public, dns("xn--a.example.com"), Malformed, "A-label"),
        refused(
            &public,
            dns("xn--99999999999999.example.com"),
            Malformed,
            "A-label",
        ),
        // Public suffixes, ICANN and private.
        refused(&public, dns("co.uk"), RejectedIdentifier, "public suffix"),
        refused(
            &public,
            dns("github.io"),
            RejectedIdentifier,
            "public suffix",
        ),
        refused(&private, dns("co.uk"), RejectedIdentifier, "public suffix"),
        refused(
            &public,
            dns("*.co.uk"),
            RejectedIdentifier,
            "wildcard directly over a public suffix",
        ),
        refused(
            &public,
            dns("*.github.io"),
            RejectedIdentifier,
            "wildcard directly over a public suffix",
        ),
        refused(&public, dns("com"), Malformed, "two labels"),
        // Wildcard misuse.
        refused(&public, dns("*.com"), Malformed, "two labels"),
        refused(&public, dns("*"), Malformed, "wildcard"),
        refused(&public, dns("**.example.com"), Malformed, "wildcard"),
        refused(&public, dns("*.*.example.com"), Malformed, "wildcard"),
        refused(&public, dns("a.*.example.com"), Malformed, "wildcard"),
        refused(&public, dns("a*.example.com"), Malformed, "wildcard"),
        // Unknown TLDs, when the policy requires known ones.
        refused(
            &public,
            dns("a.invalidtld"),
            RejectedIdentifier,
            "known top-level domain",
        ),
        refused(
            &public,
            dns("*.a.invalidtld"),
            RejectedIdentifier,
            "known top-level domain",
        ),
        refused(
            &public,
            dns("x.example"),
            RejectedIdentifier,
            "known top-level domain",
        ),
        refused(
            &public,
            dns("host.localhost"),
            RejectedIdentifier,
            "known top-level domain",
        ),
        // IPs: canonical form, reserved ranges, and profiles without IPs.
        refused(&public, ip("2001:DB8::1"), Malformed, "canonical"),
        refused(&public, ip("010.0.0.1"), Malformed, "not an IP address"),
        refused(&public, ip("0.0.0.0"), RejectedIdentifier, "reserved"),
        refused(&public, ip("10.0.0.1"), RejectedIdentifier, "reserved"),
        refused(&public, ip("127.0.0.1"), RejectedIdentifier, "reserved"),
        refused(
            &public,
            ip("169.254.169.254"),
            RejectedIdentifier,
            "reserved",
        ),
        refused(&public, ip("172.16.0.1"), RejectedIdentifier, "reserved"),
        refused(&public, ip("192.168.1.1"), RejectedIdentifier, "reserved"),
        refused(&public, ip("100.64.0.1"), RejectedIdentifier, "reserved"),
        refused(&public, ip("192.0.2.1"), RejectedIdentifier, "reserved"),
        refused(&public, ip("198.18.0.1"), RejectedIdentifier, "reserved"),
        refused(&public, ip("224.0.0.1"), RejectedIdentifier, "reserved"),
        refused(
            &public,
            ip("255.255.255.255"),
            RejectedIdentifier,
            "reserved",
        ),
        refused(&public, ip("::"), RejectedIdentifier, "reserved"),
        refused(&public, ip("::1"), RejectedIdentifier, "reserved"),
        refused(&public, ip("fe80::1"), RejectedIdentifier, "reserved"),
        refused(&public, ip("fd00::1"), RejectedIdentifier, "reserved"),
        refused(&public, ip("2001:db8::1"), RejectedIdentifier, "reserved"),
        refused(
            &public,
            ip("::ffff:10.0.0.1"),
            RejectedIdentifier,
            "reserved",
        ),
        refused(&public, ip("ff02::1"), RejectedIdentifier, "reserved"),
        refused(&dns_only, ip("8.8.8.8"), RejectedIdentifier, "not enabled"),
        refused(&private, ip("10.0.0.1"), RejectedIdentifier, "not enabled"),
        // Block lists, which win over allow lists, and allow-list misses.
        refused(
            &public,
            dns("evil.com"),
            RejectedIdentifier,
            "blocked by the CA's policy",
        ),
        refused(
            &public,
            dns("www.evil.com"),
            RejectedIdentifier,
            "blocked by the CA's policy",
        ),
        refused(
            &public,
            dns("*.evil.com"),
            RejectedIdentifier,
            "blocked by the CA's policy",
        ),
        refused(
            &private,
            dns("bad.corp.example"),
            RejectedIdentifier,
            "blocked by the CA's policy",
        ),
        refused(
            &private,
            dns("x.bad.corp.example"),
            RejectedIdentifier,
            "blocked by the CA's policy",
        ),
        refused(
            &private,
            dns("*.bad.corp.example"),
            RejectedIdentifier,
            "blocked by the CA's policy",
        ),
        refused(
            &private,
            dns("www.other.example"),
            RejectedIdentifier,
            "not under an allowed domain",
        ),
        refused(
            &private,
            dns("notcorp.example"),
            RejectedIdentifier,
            "not under an allowed domain",
        ),
        refused(
            &private,
            dns("corp.example.com"),
            RejectedIdentifier,
            "not under an allowed domain",
        ),
        refused(
            &private,
            dns("*.other.example"),
            RejectedIdentifier,
            "not under an allowed domain",
        ),
    ];
    assert!(cases.len() >= 40, "{} cases", cases.len());
    for case in cases {
        let err = case
            .policy
            .check(std::slice::from_ref(&case.id))
            .expect_err(&format!("{:?} was accepted", case.id));
        assert_eq!(err.kind, case.kind, "{:?}: {}", case.id, err.detail);
        assert_eq!(err.subproblems.len(), 1, "{:?}", case.id);
        let sub = &err.subproblems[0];
        assert_eq!(sub.identifier, case.id);
        assert_eq!(sub.kind, case.kind, "{:?}", case.id);
        assert!(
            sub.detail.contains(case.detail),
            "{:?}: {:?} lacks {:?}",
            case.id,
            sub.detail,
            case.detail
        );
    }
}

#[test]
fn battery_of_accepted_identifiers() {
    let public = public();
    let private = private();
    let accepted = [
        (&public, Identifier::dns("example.com")),
        (&public, Identifier::dns("*.example.com")),
        (&public, Identifier::dns("www.example.co.uk")),
        (&public, Identifier::dns("*.example.co.uk")),
        (&public, Identifier::dns("user.github.io")),
        (&public, Identifier::dns("xn--bcher-kva.example.com")),
        (&public, Identifier::dns("notevil.com")),
        (&public, Identifier::ip("8.8.8.8")),
        (&public, Identifier::ip("2606:4700:4700::1111")),
        (&private, Identifier::dns("corp.example")),
        (&private, Identifier::dns("a.b.corp.example")),
        (&private, Identifier::dns("*.corp.example")),
        (&private, Identifier::dns("notbad.corp.example")),
        (&IdentifierPolicy::default(), Identifier::dns("x.example")),
        (
            &IdentifierPolicy::default(),
            Identifier::dns("host.localhost"),
        ),
    ];
    for (policy, id) in accepted {
        assert_eq!(policy.check(std::slice::from_ref(&id)).unwrap(), vec![id]);
    }
    let lab = IdentifierPolicy {
        allow_ip_identifiers: true,
        ..IdentifierPolicy::default()
    };
    let local = [Identifier::ip("127.0.0.1"), Identifier::ip("::1")];
    assert_eq!(
        lab.check(&local).unwrap(),
        vec![local[0].clone(), local[1].clone()]
    );
}

#[test]
fn battery_several_bad_names_make_one_problem() {
    let ids = [
        Identifier::dns("ok.example.com"),
        Identifier::dns("co.uk"),
        Identifier::dns("www.evil.com"),
        Identifier::dns("a.invalidtld"),
        Identifier::dns("a_b.example.com"),
        Identifier::ip("10.0.0.1"),
    ];
    let err = public().check(&ids).unwrap_err();
    // The kinds differ, so the top-level one is rejectedIdentifier.
    assert_eq!(err.kind, ErrorKind::RejectedIdentifier);
    let subs: Vec<(&Identifier, ErrorKind)> = err
        .subproblems
        .iter()
        .map(|sub| (&sub.identifier, sub.kind))
        .collect();
    assert_eq!(
        subs,
        vec![
            (&ids[3], ErrorKind::RejectedIdentifier),
            (&ids[4], ErrorKind::Malformed),
            (&ids[1], ErrorKind::RejectedIdentifier),
            (&ids[2], ErrorKind::RejectedIdentifier),
            (&ids[5], ErrorKind::RejectedIdentifier),
        ]
    );
    assert!(err.detail.contains("4 more problems"), "{}", err.detail);
}

#[test]
fn domain_rules_are_checked() {
    assert_eq!(check_domain_rule("corp.example"), Ok(()));
    assert_eq!(
        check_domain_rule("example"),
        Err("\"example\" is not a valid DNS name: DNS name needs at least two labels".to_owned())
    );
    for bad in [
        "Corp.example",
        "*.corp.example",
        "corp.example.",
        "",
        "a..b",
    ] {
        assert!(check_domain_rule(bad).is_err(), "{bad:?}");
    }
}
