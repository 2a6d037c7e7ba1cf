//! A page's state lives in its URL (range, bucket, zone, view, filters,
//! sort, split), so every view can be bookmarked and shared. This keeps the
//! query string as given and builds links that change one thing.

/// The query string of the current page, as name/value pairs.
#[derive(Debug, Clone, Default)]
pub struct UrlState {
    pairs: Vec<(String, String)>,
}

/// Parameters that only make sense for one page of results.
const PAGE_ONLY: &[&str] = &["after"];

impl UrlState {
    pub fn parse(query: Option<&str>) -> UrlState {
        let pairs = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        UrlState { pairs }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// This state with `changes` applied (`None` removes a parameter),
    /// without a page cursor.
    pub fn with(&self, changes: &[(&str, Option<&str>)]) -> UrlState {
        let mut pairs: Vec<(String, String)> = self
            .pairs
            .iter()
            .filter(|(k, _)| {
                !PAGE_ONLY.contains(&k.as_str()) && !changes.iter().any(|(name, _)| name == k)
            })
            .cloned()
            .collect();
        for (name, value) in changes {
            if let Some(value) = value {
                pairs.push(((*name).to_owned(), (*value).to_owned()));
            }
        }
        UrlState { pairs }
    }

    /// Only the parameters named.
    pub fn only(&self, names: &[&str]) -> UrlState {
        UrlState {
            pairs: self
                .pairs
                .iter()
                .filter(|(k, _)| names.contains(&k.as_str()))
                .cloned()
                .collect(),
        }
    }

    pub fn query(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.pairs {
            out.append_pair(k, v);
        }
        out.finish()
    }

    /// `path?query`, or just `path`.
    pub fn href(&self, path: &str) -> String {
        let query = self.query();
        if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{query}")
        }
    }

    /// Hidden inputs that carry this state through a GET form, except the
    /// names the form sets itself.
    pub fn hidden_inputs(&self, except: &[&str]) -> maud::Markup {
        maud::html! {
            @for (k, v) in &self.pairs {
                @if !except.contains(&k.as_str()) && !PAGE_ONLY.contains(&k.as_str()) {
                    input type="hidden" name=(k) value=(v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_change_one_thing_and_drop_the_cursor() {
        let state = UrlState::parse(Some("range=7d&model=a&after=n5.3&sort=cost"));
        assert_eq!(
            state.with(&[("sort", Some("time"))]).href("/events"),
            "/events?range=7d&model=a&sort=time"
        );
        assert_eq!(state.with(&[("model", None)]).query(), "range=7d&sort=cost");
        assert_eq!(state.only(&["range"]).href("/"), "/?range=7d");
        assert_eq!(UrlState::parse(None).href("/"), "/");
    }
}
