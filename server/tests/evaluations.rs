//! 好差评 against the real server (issue 17): a rating delivered once (a
//! retry gets the same), a second one refused, another resident's refused,
//! a 差评 without a reason refused by core's validator; a 差评's case due
//! 15 working days later on the 2026 calendar (a weekend, 中秋 and 国庆
//! skipped, the 调休 Saturday 10-10 worked), overdue once the injected
//! clock passes it; the reviewer's answer on the resident's timeline and
//! the one re-rating; statistics and their CSV without resident ids; an
//! operator's calendar year moving a provisional deadline.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use zhangban_tests::server::*;

/// 2026-09-24 10:00 in China (a Thursday, before 中秋 and 国庆).
const SEP_24: i64 = 1_790_215_200;
const DAY: i64 = 86_400;

/// A submission of the plain guide by `dev`, moved to `approved`; its
/// client id and tracking number.
async fn finished(s: &TestServer, dev: &Device) -> (String, String) {
    let cid = s.client_id();
    let body = s.body(plain_guide(), &[]);
    let resp = s.submit(dev, &cid, &body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let receipt: Value = resp.json().await.unwrap();
    let tracking = receipt["tracking_number"].as_str().unwrap().to_owned();
    for state in ["accepted", "reviewing", "approved"] {
        assert_eq!(
            s.transition(&tracking, state).await.status(),
            StatusCode::OK
        );
    }
    (cid, tracking)
}

async fn rate(
    s: &TestServer,
    dev: &Device,
    cid: &str,
    rid: &str,
    body: &Value,
) -> reqwest::Response {
    s.as_dev(
        dev,
        Method::PUT,
        &format!("/v1/submissions/{cid}/rating/{rid}"),
    )
    .json(body)
    .send()
    .await
    .unwrap()
}

fn reviewer(s: &TestServer, method: Method, path: &str) -> reqwest::RequestBuilder {
    s.req(method, path).bearer_auth(REVIEWER_TOKEN)
}

/// The device, logged in again (tokens expire when the clock moves on).
async fn relogin(s: &TestServer, dev: &Device) -> Device {
    Device {
        token: s.login(&dev.key).await,
        ..dev.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rating_is_delivered_once_and_only_by_its_resident() {
    let s = TestServer::start().await;
    let (_, alice) = s.resident_with_device().await;
    let (_, bob) = s.resident_with_device().await;
    let (cid, tracking) = finished(&s, &alice).await;
    let good =
        json!({"level": "very_satisfied", "tags": ["fast", "no_trip"], "comment": "一次办好"});

    // The outbox delivers, loses the answer, delivers again: one rating.
    let first = rate(&s, &alice, &cid, "rating-alice-0001", &good).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["round"], 1);
    assert_eq!(first["grade"], "good");
    assert_eq!(first["tracking_number"], tracking.as_str());
    assert_eq!(first["case"], Value::Null);
    let again = rate(&s, &alice, &cid, "rating-alice-0001", &good).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.unwrap(), first);

    // A second rating is refused with a stable code; the id cannot be reused.
    let second = json!({"level": "satisfied"});
    expect_error(
        rate(&s, &alice, &cid, "rating-alice-0002", &second).await,
        StatusCode::CONFLICT,
        "already_rated",
    )
    .await;
    expect_error(
        rate(&s, &alice, &cid, "rating-alice-0001", &second).await,
        StatusCode::CONFLICT,
        "rating_id_reused",
    )
    .await;

    // Bob cannot rate Alice's submission: not found, as when he reads it.
    expect_error(
        rate(&s, &bob, &cid, "rating-bob-00001", &good).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let read = s
        .as_dev(&bob, Method::GET, &format!("/v1/submissions/{cid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::NOT_FOUND);

    // A 差评 needs a reason (core's validator), tags come from core's list.
    let (cid2, _) = finished(&s, &alice).await;
    for (body, code) in [
        (json!({"level": "dissatisfied"}), "reason_required"),
        (
            json!({"level": "very_dissatisfied", "reason": "  "}),
            "reason_required",
        ),
        (
            json!({"level": "satisfied", "tags": ["made_up"]}),
            "unknown_tag",
        ),
    ] {
        expect_error(
            rate(&s, &alice, &cid2, "rating-alice-0003", &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            code,
        )
        .await;
    }
    // An application still under way cannot be rated.
    let cid3 = s.client_id();
    assert_eq!(
        s.submit(&alice, &cid3, &s.body(plain_guide(), &[]))
            .await
            .status(),
        StatusCode::OK
    );
    expect_error(
        rate(&s, &alice, &cid3, "rating-alice-0004", &good).await,
        StatusCode::CONFLICT,
        "not_finished",
    )
    .await;
    let rated = s.state.store.rated(None).unwrap();
    assert_eq!(rated.len(), 1, "{rated:?}");
    assert!(s.state.store.cases(None, false).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_rating_opens_a_case_due_in_working_days_answered_onto_the_timeline() {
    let s = TestServer::start().await;
    s.clock.set(SEP_24 - DAY);
    let (_, alice) = s.resident_with_device().await;
    let (cid, tracking) = finished(&s, &alice).await;

    // The 差评 arrives on Thursday 2026-09-24 (China's date).
    s.clock.set(SEP_24);
    let alice = relogin(&s, &alice).await;
    let bad = json!({"level": "dissatisfied", "tags": ["several_trips"],
        "reason": "窗口要求重复提交已在线上传的材料"});
    let resp = rate(&s, &alice, &cid, "rating-bad-000001", &bad).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let rating: Value = resp.json().await.unwrap();
    assert_eq!(rating["grade"], "bad");
    // 15 working days: 09-28..30 (3; 中秋 09-25..27 off), 国庆 10-01..07
    // off, 10-08, 10-09, the 调休 Saturday 10-10 (6), 10-12..16 (11),
    // the weekend 10-17/18 off, 10-19..22 (15). Monday to Friday alone
    // would have said 10-15.
    assert_eq!(rating["case"]["opened_on"], "2026-09-24");
    assert_eq!(rating["case"]["due_on"], "2026-10-22");
    assert_eq!(rating["case"]["provisional"], false);
    let case_id = rating["case"]["id"].as_str().unwrap().to_owned();

    // On the due day the case is open, not overdue; the day after, overdue.
    s.clock.set(SEP_24 + 28 * DAY);
    let list: Value = json_ok(reviewer(&s, Method::GET, "/v1/operator/evaluations/cases")).await;
    assert_eq!(list["today"], "2026-10-22");
    assert_eq!(list["cases"].as_array().unwrap().len(), 1);
    assert_eq!(list["cases"][0]["overdue"], false);
    let overdue: Value = json_ok(reviewer(
        &s,
        Method::GET,
        "/v1/operator/evaluations/cases?overdue=true",
    ))
    .await;
    assert!(overdue["cases"].as_array().unwrap().is_empty());
    s.clock.advance(DAY);
    let overdue: Value = json_ok(reviewer(
        &s,
        Method::GET,
        "/v1/operator/evaluations/cases?overdue=true",
    ))
    .await;
    let cases = overdue["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0]["id"], case_id.as_str());
    assert_eq!(cases[0]["tracking_number"], tracking.as_str());
    assert_eq!(cases[0]["overdue"], true);
    assert_eq!(cases[0]["days_late"], 1);
    assert!(cases[0].get("resident_id").is_none());

    // No re-rating before the answer.
    let alice = relogin(&s, &alice).await;
    let better = json!({"level": "satisfied", "comment": "整改后满意"});
    expect_error(
        rate(&s, &alice, &cid, "rating-re-0000001", &better).await,
        StatusCode::CONFLICT,
        "already_rated",
    )
    .await;

    // Only a reviewer of the case's department answers; a reviewer of
    // another department neither sees nor answers it.
    let path = format!("/v1/operator/evaluations/cases/{case_id}/answer");
    let answer = json!({"answer": "已核实，窗口已改为线上材料直接调用，并电话回访"});
    let other = "zbo_other-department-reviewer";
    add_operator(
        s.state.store.as_ref(),
        "other-reviewer",
        "reviewer",
        vec!["no-such-department".into()],
        other,
    );
    let theirs: Value = json_ok(
        s.req(Method::GET, "/v1/operator/evaluations/cases")
            .bearer_auth(other),
    )
    .await;
    assert!(theirs["cases"].as_array().unwrap().is_empty());
    expect_error(
        s.req(Method::POST, &path)
            .bearer_auth(other)
            .json(&answer)
            .send()
            .await
            .unwrap(),
        StatusCode::FORBIDDEN,
        "out_of_scope",
    )
    .await;
    let their_stats: Value = json_ok(
        s.req(Method::GET, "/v1/operator/evaluations/stats")
            .bearer_auth(other),
    )
    .await;
    assert_eq!(their_stats["departments"], json!([]));
    expect_error(
        s.req(Method::POST, &path)
            .bearer_auth(OPERATOR_TOKEN)
            .json(&answer)
            .send()
            .await
            .unwrap(),
        StatusCode::FORBIDDEN,
        "forbidden_role",
    )
    .await;
    expect_error(
        reviewer(&s, Method::POST, &path)
            .json(&json!({"answer": "  "}))
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "bad_answer",
    )
    .await;
    let answered: Value = json_ok(reviewer(&s, Method::POST, &path).json(&answer)).await;
    assert_eq!(answered["case"]["answered_on"], "2026-10-23");
    assert_eq!(answered["case"]["days_late"], 1);
    assert_eq!(answered["event"]["state"], "approved");
    expect_error(
        reviewer(&s, Method::POST, &path)
            .json(&answer)
            .send()
            .await
            .unwrap(),
        StatusCode::CONFLICT,
        "case_answered",
    )
    .await;
    let events: Value = json_ok(s.as_dev(&alice, Method::GET, "/v1/events")).await;
    let last = events["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["client_id"], cid.as_str());
    assert_eq!(last["state"], "approved");
    assert!(
        last["note"]
            .as_str()
            .unwrap()
            .ends_with("已核实，窗口已改为线上材料直接调用，并电话回访"),
        "{last}"
    );
    let open: Value = json_ok(reviewer(&s, Method::GET, "/v1/operator/evaluations/cases")).await;
    assert!(open["cases"].as_array().unwrap().is_empty());

    // One re-rating after the answer, then none.
    let re = rate(&s, &alice, &cid, "rating-re-0000001", &better).await;
    assert_eq!(re.status(), StatusCode::CREATED);
    let re: Value = re.json().await.unwrap();
    assert_eq!(re["round"], 2);
    expect_error(
        rate(&s, &alice, &cid, "rating-re-0000002", &better).await,
        StatusCode::CONFLICT,
        "already_rated",
    )
    .await;

    // Every operator action was audited.
    let rows = s
        .state
        .store
        .audit_log(&zhangban_server::store::operators::AuditFilter::default())
        .unwrap();
    let actions: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| r.entry.action.starts_with("evaluation."))
        .map(|r| (r.entry.action.as_str(), r.entry.outcome.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("evaluation.cases.list", "ok"),
            ("evaluation.cases.list", "ok"),
            ("evaluation.cases.list", "ok"),
            ("evaluation.cases.list", "ok"),
            ("evaluation.case.answer", "refused:out_of_scope"),
            ("evaluation.stats", "ok"),
            ("evaluation.case.answer", "refused:forbidden_role"),
            ("evaluation.case.answer", "failed:bad_answer"),
            ("evaluation.case.answer", "ok"),
            ("evaluation.case.answer", "failed:case_answered"),
            ("evaluation.cases.list", "ok"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_count_levels_per_department_and_item_without_residents() {
    let s = TestServer::start().await;
    s.clock.set(SEP_24);
    let (alice_r, alice) = s.resident_with_device().await;
    let (bob_r, bob) = s.resident_with_device().await;
    let mut n = 0;
    for (dev, level) in [
        (&alice, "very_satisfied"),
        (&alice, "satisfied"),
        (&bob, "basically_satisfied"),
        (&bob, "very_dissatisfied"),
    ] {
        n += 1;
        let (cid, _) = finished(&s, dev).await;
        let body = json!({"level": level, "reason": "办理太慢"});
        let resp = rate(&s, dev, &cid, &format!("rating-stats-{n:04}"), &body).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    let dept = plain_guide().department_code.clone();
    let stats: Value = json_ok(
        s.req(Method::GET, "/v1/operator/evaluations/stats")
            .bearer_auth(OPERATOR_TOKEN),
    )
    .await;
    let d = &stats["departments"][0];
    assert_eq!(d["department_code"], dept.as_str());
    assert_eq!(d["total"], 4);
    assert_eq!(d["levels"]["very_satisfied"], 1);
    assert_eq!(d["levels"]["very_dissatisfied"], 1);
    assert_eq!(
        (d["good"].clone(), d["neutral"].clone(), d["bad"].clone()),
        (json!(2), json!(1), json!(1))
    );
    assert_eq!(d["good_rate"], 0.5);
    assert_eq!(d["open_cases"], 1);
    assert_eq!(d["overdue_cases"], 0);
    assert_eq!(stats["items"][0]["guide_id"], plain_guide().id.as_str());
    assert_eq!(stats["items"][0]["total"], 4);
    // The reviewer of the department sees the same; no resident anywhere.
    let by_reviewer: Value =
        json_ok(reviewer(&s, Method::GET, "/v1/operator/evaluations/stats")).await;
    assert_eq!(by_reviewer["departments"], stats["departments"]);
    let csv = reviewer(&s, Method::GET, "/v1/operator/evaluations/stats?format=csv")
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(
        csv.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = csv.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "department_code,guide_id,total,very_dissatisfied,dissatisfied,basically_satisfied,satisfied,very_satisfied,good,neutral,bad,good_rate,open_cases,overdue_cases"
    );
    assert_eq!(lines[1], format!("{dept},,4,1,0,1,1,1,2,1,1,0.5000,1,0"));
    assert_eq!(lines.len(), 3);
    for text in [csv.as_str(), &stats.to_string()] {
        for id in [&alice_r.id, &bob_r.id, &alice.resident_id, &bob.id] {
            assert!(!text.contains(id.as_str()), "{id} in {text}");
        }
    }
    // A publisher sees no statistics.
    expect_error(
        s.req(Method::GET, "/v1/operator/evaluations/stats")
            .bearer_auth(PUBLISHER_TOKEN)
            .send()
            .await
            .unwrap(),
        StatusCode::FORBIDDEN,
        "forbidden_role",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_calendar_year_moves_a_provisional_deadline() {
    let s = TestServer::start().await;
    // A 差评 on 2026-12-21: 15 working days reach 2027, not yet published.
    let dec_21 = SEP_24 + 88 * DAY;
    s.clock.set(dec_21);
    let (_, alice) = s.resident_with_device().await;
    let (cid, _) = finished(&s, &alice).await;
    let body = json!({"level": "dissatisfied", "reason": "等待时间过长"});
    let rating: Value = rate(&s, &alice, &cid, "rating-dec-000001", &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rating["case"]["opened_on"], "2026-12-21");
    assert_eq!(rating["case"]["due_on"], "2027-01-11");
    assert_eq!(rating["case"]["provisional"], true);
    let year = json!({
        "source": "国务院办公厅关于2027年部分节假日安排的通知（测试）",
        "holidays": [["2027-01-01", "2027-01-03", "元旦"]],
        "workdays": []
    });
    expect_error(
        reviewer(&s, Method::PUT, "/v1/operator/calendar/2027")
            .json(&year)
            .send()
            .await
            .unwrap(),
        StatusCode::FORBIDDEN,
        "forbidden_role",
    )
    .await;
    expect_error(
        s.req(Method::PUT, "/v1/operator/calendar/2027")
            .bearer_auth(OPERATOR_TOKEN)
            .json(&json!({"source": "x", "holidays": [["2027-01-05", "2027-01-01", "bad"]]}))
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_calendar",
    )
    .await;
    let put: Value = json_ok(
        s.req(Method::PUT, "/v1/operator/calendar/2027")
            .bearer_auth(OPERATOR_TOKEN)
            .json(&year),
    )
    .await;
    assert_eq!(put["cases_redue"], 1);
    let case = s.state.store.case("rating-dec-000001").unwrap().unwrap();
    // 2027-01-01 (a Friday) is now a holiday: one more day.
    assert_eq!(
        (case.due_on.as_str(), case.provisional),
        ("2027-01-12", false)
    );
}
