//! A small HTTP client for the console that keeps its cookies and the
//! page's CSRF token the way a browser does. Its own file so that other
//! crates' tests of the console (the all-in-one shop's) use it too
//! (`#[path]`); it needs reqwest, tokio and mq-testkit.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

/// One answer.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    /// Fails the test with the page when `text` is missing.
    #[track_caller]
    pub fn expect(&self, text: &str) -> &Page {
        assert!(
            self.body.contains(text),
            "expected {text:?} in the page ({}):\n{}",
            self.status,
            self.body
        );
        self
    }

    #[track_caller]
    pub fn expect_not(&self, text: &str) -> &Page {
        assert!(
            !self.body.contains(text),
            "did not expect {text:?} in the page:\n{}",
            self.body
        );
        self
    }

    /// The flash message of the page, if any.
    pub fn flash(&self) -> Option<String> {
        let start = self.body.find("class=\"flash ")?;
        let rest = &self.body[start..];
        let open = rest.find('>')? + 1;
        let close = rest.find("</div>")?;
        Some(rest[open..close].to_owned())
    }
}

/// An HTTP client with a cookie jar and the last page's CSRF token.
pub struct Browser {
    base: String,
    http: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
    pub csrf: Option<String>,
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        Browser {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
            csrf: None,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn read(&mut self, response: reqwest::Response) -> Page {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let set_cookies: Vec<String> = headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for c in &set_cookies {
            let pair = c.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let location = headers
            .get(LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.text().await.unwrap();
        if let Some(i) = body.find("name=\"_csrf\" value=\"") {
            let rest = &body[i + 20..];
            self.csrf = Some(rest[..rest.find('"').unwrap()].to_owned());
        }
        Page {
            status,
            location,
            set_cookies,
            headers,
            body,
        }
    }

    /// GET without following redirects.
    pub async fn get_raw(&mut self, path: &str) -> Page {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.read(response).await
    }

    /// GET, following redirects.
    pub async fn get(&mut self, path: &str) -> Page {
        let mut page = self.get_raw(path).await;
        for _ in 0..5 {
            match (&page.status, page.location.clone()) {
                (301..=308, Some(to)) => page = self.get_raw(&to).await,
                _ => break,
            }
        }
        page
    }

    /// GETs `path` until the page shows `text` (the broker indexes and
    /// dispatches a message just after it acknowledges it); panics after
    /// mq-testkit's bound with the last page.
    pub async fn get_until(&mut self, path: &str, text: &str) -> Page {
        self.get_until_shows(path, &[text], &[]).await
    }

    /// GETs `path` until the page shows every one of `present` and none of
    /// `absent` (a consumer group's offset reaches the broker a little
    /// after the group applied a message); panics after mq-testkit's bound
    /// with what was still wrong and the last page.
    pub async fn get_until_shows(&mut self, path: &str, present: &[&str], absent: &[&str]) -> Page {
        let deadline = tokio::time::Instant::now() + mq_testkit::WAIT;
        loop {
            let page = self.get(path).await;
            let wrong: Vec<&&str> = present
                .iter()
                .filter(|t| !page.body.contains(**t))
                .chain(absent.iter().filter(|t| page.body.contains(**t)))
                .collect();
            if wrong.is_empty() {
                return page;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path} ({}) never showed all of the one and none of the other: {wrong:?}\n{}",
                page.status,
                page.body
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// POST a form as it is, no token added.
    pub async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                fields
                    .iter()
                    .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
                    .collect::<Vec<_>>()
                    .join("&"),
            )
            .send()
            .await
            .unwrap();
        self.read(response).await
    }

    /// POST a form with the CSRF token of the last page, following the
    /// redirect to the page that shows the outcome.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let token = self
            .csrf
            .clone()
            .expect("a page with a form was opened first");
        let mut all: Vec<(&str, &str)> = vec![("_csrf", token.as_str())];
        all.extend_from_slice(fields);
        let page = self.post_raw(path, &all).await;
        match (&page.status, page.location.clone()) {
            (301..=308, Some(to)) => self.get(&to).await,
            _ => page,
        }
    }

    /// Logs in through the form; panics when it fails.
    pub async fn login(&mut self, user: &str, password: &str) {
        self.get("/login").await;
        let page = self
            .post("/login", &[("username", user), ("password", password)])
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            page.body.contains("/logout"),
            "not logged in:\n{}",
            page.body
        );
    }
}

/// Percent-encodes a query value.
pub fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
