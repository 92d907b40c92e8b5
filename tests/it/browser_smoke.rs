//! The WebDriver client itself: a real headless Chromium loads a page from a real umcd.

use crate::common;

use common::Server;
use common::browser::{Browser, screenshot_dir};

#[test]
fn chromium_loads_healthz_and_takes_a_screenshot() {
    let server = Server::start();
    let Some(browser) = Browser::start() else {
        return;
    };
    browser.goto(&format!("{}/healthz", server.url));
    assert_eq!(browser.current_url(), format!("{}/healthz", server.url));
    assert_eq!(browser.find("body").text().trim(), "ok");

    let png = screenshot_dir().join("smoke.png");
    let _ = std::fs::remove_file(&png);
    browser.screenshot(&png);
    let bytes = std::fs::read(&png).expect("read screenshot");
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "not a PNG: {} bytes",
        bytes.len()
    );
}

/// Every command of the client once, on a page of our own (a `data:` URL) and on umcd for
/// cookies, so a broken command shows up here rather than in a UI test.
#[test]
fn every_command_works() {
    let server = Server::start();
    let Some(b) = Browser::start() else {
        return;
    };
    b.set_window_size(1024, 768);
    b.goto(
        "data:text/html,<title>T</title><form id=f><input name=q value=a>\
         <select name=s><option value=x>X</option><option value=y>Y</option></select>\
         <p class=p>one</p><p class=p hidden>two</p></form>",
    );
    assert_eq!(b.title(), "T");
    assert!(b.source().contains("<select"));
    let q = b.find("input[name=q]");
    assert_eq!(q.value(), "a");
    q.clear();
    q.send_keys("hello");
    assert_eq!(q.value(), "hello");
    assert_eq!(q.attr("name").as_deref(), Some("q"));
    assert_eq!(q.attr("nope"), None);
    let s = b.find("#f").find("select");
    s.select_by_value("y");
    assert_eq!(s.value(), "y");
    let ps = b.find_all("p.p");
    assert_eq!(ps.len(), 2);
    assert_eq!(ps[0].text(), "one");
    assert!(ps[0].is_displayed() && !ps[1].is_displayed());
    assert!(b.try_find("#missing").is_none());
    let tag = b.execute(
        "return arguments[0].tagName + arguments[1];",
        &[q.to_json(), 1.into()],
    );
    assert_eq!(tag, "INPUT1");
    b.execute("setTimeout(() => document.title = 'later', 200);", &[]);
    b.wait_until(
        "the title to change",
        std::time::Duration::from_secs(5),
        |b| b.title() == "later",
    );

    b.goto(&format!("{}/healthz", server.url));
    b.add_cookie("c", "v1");
    assert_eq!(b.cookie("c").as_deref(), Some("v1"));
    assert_eq!(b.cookies().len(), 1);
    b.delete_all_cookies();
    assert_eq!(b.cookie("c"), None);
}
