//! What a delivery says: the `json` webhook body (our own object, signed),
//! the chat formats (Slack, Mattermost, Discord, Microsoft Teams, ntfy)
//! with a one-line human message, and the text of an email. Everything
//! comes from the `alerts` row: its numbers, and its `details` (budget
//! name, scope, member, period, time zone) as they were when recorded.

use hmac::{Hmac, Mac};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Value, json};
use sha2::Sha256;

use super::channels::Format;
use super::store::{AlertKind, AlertRow};
use crate::model::Unit;
use crate::model::format::{decimal, integer};

/// What the instance adds to every message: where its pages are, and
/// the unit money is shown in.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// `public_url` when configured (links are then absolute).
    pub public_url: Option<String>,
    pub unit: Unit,
}

/// A request body with its content type and extra headers.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// The alert's `details` field `name` as text ("" when absent).
fn detail<'a>(alert: &'a AlertRow, name: &str) -> &'a str {
    alert
        .details
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn zone_of(alert: &AlertRow) -> TimeZone {
    TimeZone::get(detail(alert, "time_zone")).unwrap_or(TimeZone::UTC)
}

fn instant(ms: i64, zone: &TimeZone) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| {
            let local = t.to_zoned(zone.clone());
            t.display_with_offset(local.offset()).to_string()
        })
        .unwrap_or_default()
}

/// An amount in the body: a decimal string of US dollars for money (like
/// the API), an integer for tokens.
fn amount_value(alert: &AlertRow, value: Option<i64>) -> Value {
    match value {
        None => Value::Null,
        Some(v) if alert.measure == "tokens" => json!(v),
        Some(v) => json!(decimal(v)),
    }
}

/// An amount for people: in the instance's unit, or tokens.
fn shown(alert: &AlertRow, value: i64, unit: &Unit) -> String {
    if alert.measure == "tokens" {
        format!("{} tokens", integer(value))
    } else {
        unit.money(value)
    }
}

/// A link to the events page filtered to the alert's period and scope.
pub fn events_url(alert: &AlertRow, context: &Context) -> String {
    let zone = zone_of(alert);
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("from", &instant(alert.period_start_ms, &TimeZone::UTC));
    query.append_pair("to", &instant(alert.period_end_ms, &TimeZone::UTC));
    if let Some(name) = zone.iana_name() {
        query.append_pair("zone", name);
    }
    let scope = detail(alert, "scope");
    let member = alert.details.get("member").and_then(Value::as_str);
    if let Some(user) = member.or_else(|| scope.strip_prefix("user:")) {
        query.append_pair("user", user);
    } else if let Some(model) = scope.strip_prefix("model:") {
        query.append_pair("model", model);
    } else if scope.starts_with("team:") {
        query.append_pair("view", scope);
    }
    let base = context
        .public_url
        .as_deref()
        .map_or("", |url| url.trim_end_matches('/'));
    format!("{base}/events?{}", query.finish())
}

/// The `json` body: every field of the alert, amounts as described in
/// the README (decimal USD strings for money, integers for tokens).
pub fn json_body(alert: &AlertRow, context: &Context) -> Value {
    let zone = zone_of(alert);
    json!({
        "kind": alert.kind.name(),
        "budget": alert.details.get("budget").cloned().unwrap_or(Value::Null),
        "scope": detail(alert, "scope"),
        "period_start": instant(alert.period_start_ms, &zone),
        "period_end": instant(alert.period_end_ms, &zone),
        "threshold": alert.threshold,
        "used": amount_value(alert, Some(alert.used)),
        "amount": amount_value(alert, alert.amount),
        "projected": amount_value(alert, alert.projected),
        "unit": context.unit,
        "events_url": events_url(alert, context),
        "idempotency_key": alert.idempotency_key,
    })
}

fn period_phrase(alert: &AlertRow) -> &'static str {
    match detail(alert, "period") {
        "day" => "today",
        "week" => "this week",
        _ => "this month",
    }
}

/// The one-line message of chat formats and email subjects, e.g. "Budget
/// monthly (everyone): 80 % reached — $8.00 of $10.00 this month;
/// projected $12.40; resets Jan 1 00:00 CET".
pub fn human_line(alert: &AlertRow, context: &Context) -> String {
    let unit = &context.unit;
    let subject = match alert.details.get("member").and_then(Value::as_str) {
        Some(member) => format!("{}, {member}", detail(alert, "scope")),
        None => detail(alert, "scope").to_owned(),
    };
    let used = shown(alert, alert.used, unit);
    let of = alert
        .amount
        .map(|a| format!(" of {}", shown(alert, a, unit)))
        .unwrap_or_default();
    let projected = alert
        .projected
        .map(|p| format!("; projected {}", shown(alert, p, unit)))
        .unwrap_or_default();
    let resets = Timestamp::from_millisecond(alert.period_end_ms)
        .map(|t| {
            let local = t.to_zoned(zone_of(alert));
            format!("; resets {}", local.strftime("%b %-d %H:%M %Z"))
        })
        .unwrap_or_default();
    let what = match alert.kind {
        AlertKind::Threshold => format!("{} % reached", alert.threshold),
        AlertKind::Projected => "projected to go over".to_owned(),
        AlertKind::Unusual => return format!("Unusual usage ({subject}): {used}{projected}"),
    };
    let budget = detail(alert, "budget");
    let period = period_phrase(alert);
    format!("Budget {budget} ({subject}): {what} — {used}{of} {period}{projected}{resets}")
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length; the error cannot happen.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// The webhook request of `format` for `alert`: body and headers. The
/// `Idempotency-Key` header goes with every format; the signature with a
/// secret.
pub fn webhook(
    alert: &AlertRow,
    format: Format,
    secret: Option<&str>,
    context: &Context,
) -> Outgoing {
    let line = human_line(alert, context);
    let link = events_url(alert, context);
    let text = format!("{line}\n{link}");
    let mut headers = vec![("Idempotency-Key", alert.idempotency_key.clone())];
    let (content_type, body) = match format {
        Format::Json => ("application/json", json_body(alert, context).to_string()),
        Format::Slack | Format::Mattermost => {
            ("application/json", json!({"text": text}).to_string())
        }
        Format::Discord => ("application/json", json!({"content": text}).to_string()),
        Format::Teams => ("application/json", teams_card(&line, &link).to_string()),
        Format::Ntfy => {
            headers.push((
                "Title",
                format!("tokentally: budget {}", detail(alert, "budget")),
            ));
            headers.push(("Priority", ntfy_priority(alert).to_owned()));
            headers.push(("Tags", "money_with_wings".to_owned()));
            headers.push(("Click", link.clone()));
            ("text/plain; charset=utf-8", line)
        }
    };
    let body = body.into_bytes();
    if let Some(secret) = secret {
        headers.push(("X-Tokentally-Signature", signature(secret, &body)));
    }
    Outgoing {
        content_type,
        headers,
        body,
    }
}

fn ntfy_priority(alert: &AlertRow) -> &'static str {
    if alert.threshold >= 100 {
        "high"
    } else {
        "default"
    }
}

/// A legacy MessageCard: what Teams' incoming webhooks (and Power
/// Automate's "post to a channel" flow) accept without an app.
fn teams_card(line: &str, link: &str) -> Value {
    json!({
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": line,
        "themeColor": "D97706",
        "title": "tokentally budget alert",
        "text": line,
        "potentialAction": [{
            "@type": "OpenUri",
            "name": "Open the events",
            "targets": [{"os": "default", "uri": link}],
        }],
    })
}

/// The email's subject and plain-text body.
pub fn email_text(alert: &AlertRow, context: &Context) -> (String, String) {
    let line = human_line(alert, context);
    let subject = format!("[tokentally] {}", line.split(" — ").next().unwrap_or(&line));
    let body = format!(
        "{line}\n\nEvents: {}\n\nAlert key: {}\n(the same key marks a repeat of this alert)\n",
        events_url(alert, context),
        alert.idempotency_key
    );
    (subject, body)
}

/// The alert `channel test` sends: a threshold of a budget named "test".
pub fn sample_alert(now_ms: i64) -> AlertRow {
    AlertRow {
        id: 0,
        kind: AlertKind::Threshold,
        budget_id: None,
        user: None,
        period_start_ms: now_ms - now_ms.rem_euclid(86_400_000),
        period_end_ms: now_ms - now_ms.rem_euclid(86_400_000) + 86_400_000,
        threshold: 80,
        measure: "cost".into(),
        used: 8_000_000,
        amount: Some(10_000_000),
        projected: Some(12_400_000),
        details: json!({"budget": "test", "scope": "everyone", "member": null,
                        "period": "day", "time_zone": "UTC", "test": true}),
        idempotency_key: format!("test:{now_ms}"),
        quiet: false,
        created_ms: now_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> AlertRow {
        AlertRow {
            period_start_ms: 1_767_222_000_000, // 2026-01-01 00:00 CET
            period_end_ms: 1_769_900_400_000,   // 2026-02-01 00:00 CET
            details: json!({"budget": "monthly", "scope": "everyone", "member": null,
                            "period": "month", "time_zone": "Europe/Berlin"}),
            ..sample_alert(0)
        }
    }

    #[test]
    fn the_human_line_reads_as_a_sentence() {
        let line = human_line(&alert(), &Context::default());
        assert_eq!(
            line,
            "Budget monthly (everyone): 80 % reached — $8.00 of $10.00 this month; \
             projected $12.40; resets Feb 1 00:00 CET"
        );
    }

    #[test]
    fn the_json_body_has_every_field_and_a_verifiable_signature() {
        let context = Context {
            public_url: Some("https://t.example/".into()),
            unit: Unit::default(),
        };
        let out = webhook(&alert(), Format::Json, Some("k"), &context);
        let body: Value = serde_json::from_slice(&out.body).expect("json");
        assert_eq!(body["used"], "8.000000");
        assert_eq!(body["kind"], "threshold");
        assert_eq!(body["period_start"], "2026-01-01T00:00:00+01:00");
        let url = body["events_url"].as_str().expect("url");
        assert!(url.starts_with("https://t.example/events?from="), "{url}");
        let signed = out
            .headers
            .iter()
            .find(|(n, _)| *n == "X-Tokentally-Signature");
        assert_eq!(
            signed.map(|(_, v)| v.clone()),
            Some(signature("k", &out.body))
        );
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn chat_formats_carry_the_line() {
        for (format, field) in [(Format::Slack, "text"), (Format::Discord, "content")] {
            let out = webhook(&alert(), format, None, &Context::default());
            let body: Value = serde_json::from_slice(&out.body).expect("json");
            assert!(body[field].as_str().expect(field).contains("80 % reached"));
            assert!(
                !out.headers
                    .iter()
                    .any(|(n, _)| *n == "X-Tokentally-Signature")
            );
        }
    }

    #[test]
    fn teams_and_ntfy_have_their_own_shapes() {
        let teams = webhook(&alert(), Format::Teams, None, &Context::default());
        let card: Value = serde_json::from_slice(&teams.body).expect("json");
        assert_eq!(card["@type"], "MessageCard");
        assert!(
            card["text"]
                .as_str()
                .expect("text")
                .contains("80 % reached")
        );
        let ntfy = webhook(&alert(), Format::Ntfy, None, &Context::default());
        assert!(ntfy.content_type.starts_with("text/plain"));
        let names: Vec<&str> = ntfy.headers.iter().map(|(n, _)| *n).collect();
        for name in ["Idempotency-Key", "Title", "Priority", "Tags"] {
            assert!(names.contains(&name), "{names:?}");
        }
        assert!(String::from_utf8_lossy(&ntfy.body).starts_with("Budget monthly"));
    }

    #[test]
    fn tokens_are_integers_and_a_projection_says_so() {
        let tokens = AlertRow {
            measure: "tokens".into(),
            used: 1_500,
            amount: Some(1_000),
            projected: None,
            ..alert()
        };
        let body = json_body(&tokens, &Context::default());
        assert_eq!(
            (body["used"].clone(), body["amount"].clone()),
            (json!(1_500), json!(1_000))
        );
        assert_eq!(body["projected"], Value::Null);
        assert!(
            body["events_url"]
                .as_str()
                .expect("url")
                .starts_with("/events?")
        );
        let projected = AlertRow {
            kind: AlertKind::Projected,
            threshold: 100,
            used: 4_000_000,
            ..alert()
        };
        let line = human_line(&projected, &Context::default());
        assert!(
            line.contains("projected to go over — $4.00 of $10.00 this month; projected $12.40"),
            "{line}"
        );
    }
}
