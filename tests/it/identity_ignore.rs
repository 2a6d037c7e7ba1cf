//! Ignored identities (issue 14, item 3): an admin marks an unassigned
//! identity ignored on `/admin/identities`; it is still counted (in every
//! total) and still listed (marked, and under its own filter), and the
//! overview keeps it apart in the unassigned total. A linked identity
//! cannot be ignored; unignoring takes the mark off; each change is
//! audited, and members cannot make it.

use crate::common::PASSWORD;
use crate::identity_members::{app, email, seed};
use axum::http::StatusCode;
use tokentally::auth::Role;
use tokentally::model::{IdentityKey, IdentityKind};

#[tokio::test]
async fn an_ignored_identity_is_still_counted_listed_and_kept_apart() {
    let (app, root) = app().await;
    let noise = IdentityKey::new(IdentityKind::Install, "ci-runner-7");
    seed(&app, root, &noise, 4).await;
    seed(&app, root, &email("carol@example.com"), 2).await;
    app.create_user("bob", Role::Member).await;
    let admin = app.login_browser("root", PASSWORD).await;
    let range = "range=custom&from=2026-06-01&to=2026-06-15";

    let ignore = [("kind", "install"), ("value", "ci-runner-7")];
    let ignored = app
        .submit("/admin/identities/ignore", &admin, &ignore)
        .await;
    assert_eq!(ignored.status, StatusCode::SEE_OTHER, "{}", ignored.body);
    let page = app.get("/admin/identities", Some(&admin.cookie)).await;
    assert!(page.body.contains("install:ci-runner-7 is marked ignored"));
    assert!(page.body.contains("<strong>ignored</strong>"));
    assert!(page.body.contains("action=\"/admin/identities/unignore\""));
    // Filterable: under "ignored", not under "unassigned"; all listed by default.
    let only = |show: &'static str| {
        let app = &app;
        let cookie = admin.cookie.clone();
        async move {
            app.get(&format!("/admin/identities?show={show}"), Some(&cookie))
                .await
                .body
        }
    };
    let ignored_list = only("ignored").await;
    assert!(
        ignored_list.contains(">ci-runner-7<") && !ignored_list.contains(">carol@example.com<")
    );
    let unassigned_list = only("unassigned").await;
    assert!(
        !unassigned_list.contains(">ci-runner-7<")
            && unassigned_list.contains(">carol@example.com<")
    );
    assert!(only("linked").await.contains("None."));
    let bad = app
        .get("/admin/identities?show=everything", Some(&admin.cookie))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("show:"), "{}", bad.body);

    // Still counted: in everyone's total, and apart in the unassigned card.
    let overview = app.get(&format!("/?{range}"), Some(&admin.cookie)).await;
    assert!(
        overview.body.contains("Unassigned usage"),
        "{}",
        overview.body
    );
    assert!(
        overview
            .body
            .contains("Ignored (still counted, kept apart): 1 identity, $0.10, 4 calls"),
        "{}",
        overview.body
    );
    let all = app
        .get(&format!("/api/v1/usage?{range}"), Some(&admin.cookie))
        .await
        .json();
    assert_eq!(all["totals"]["events"], 6);

    // A linked identity cannot be ignored; unignore takes the mark off.
    let linked = app
        .submit(
            "/admin/identities/link",
            &admin,
            &[
                ("kind", "email"),
                ("value", "carol@example.com"),
                ("user", "bob"),
            ],
        )
        .await;
    assert_eq!(linked.status, StatusCode::SEE_OTHER);
    let refused = app
        .submit(
            "/admin/identities/ignore",
            &admin,
            &[("kind", "email"), ("value", "carol@example.com")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("is linked to bob"));
    let unignored = app
        .submit("/admin/identities/unignore", &admin, &ignore)
        .await;
    assert_eq!(unignored.status, StatusCode::SEE_OTHER);
    assert!(!only("ignored").await.contains(">ci-runner-7<"));
    let member = app.login_browser("bob", PASSWORD).await;
    let forbidden = app
        .submit("/admin/identities/ignore", &member, &ignore)
        .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);

    let ignores: Vec<String> = app
        .audit_entries("identity.ignore")
        .await
        .into_iter()
        .map(|e| format!("{} {}", e.outcome, e.target.unwrap_or_default()))
        .collect();
    assert_eq!(
        ignores,
        [
            "success identity:install:ci-runner-7",
            "failure identity:email:carol@example.com",
        ]
    );
    assert_eq!(app.audit_entries("identity.unignore").await.len(), 1);
}
