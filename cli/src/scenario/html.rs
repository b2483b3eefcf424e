//! `ibsim scenario run --html FILE`: one self-contained page (no file beside it, nothing fetched)
//! with each scenario's steps, outcome, failure diff and sequence diagram, drawn by the console's
//! own renderer (`console/assets/diagram.js`) from the conversation the run recorded.

use serde::Serialize;
use serde_json::Value;

use super::report::{Report, ScenarioReport};

const DIAGRAM_JS: &str = include_str!("../console/assets/diagram.js");
const REPORT_JS: &str = include_str!("../console/assets/report.js");
const STYLE_CSS: &str = include_str!("../console/assets/style.css");
const REPORT_CSS: &str = include_str!("../console/assets/report.css");

/// What the page's script reads: the report, each scenario with its conversation.
#[derive(Serialize)]
struct Data<'a> {
    report: &'a Report,
    conversations: Vec<&'a [Value]>,
}

impl Report {
    /// The HTML page of this report.
    pub fn html(&self) -> anyhow::Result<String> {
        let data = Data {
            report: self,
            conversations: self
                .scenarios
                .iter()
                .map(|s: &ScenarioReport| s.conversation.as_slice())
                .collect(),
        };
        let title = format!(
            "interbank-sim scenarios: {} passed, {} failed",
            self.scenarios.len() - self.failed(),
            self.failed()
        );
        Ok(format!(
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n\
             <style>\n{STYLE_CSS}\n{REPORT_CSS}\n</style>\n</head>\n<body>\n\
             <header><h1>{title}</h1></header>\n<div id=\"report\"></div>\n\
             <script type=\"application/json\" id=\"report-data\">{}</script>\n\
             <script>\n{DIAGRAM_JS}\n</script>\n<script>\n{REPORT_JS}\n</script>\n</body>\n</html>\n",
            script_safe(&serde_json::to_string(&data)?)
        ))
    }
}

/// JSON that cannot end the script element holding it: every `<` written `\u003c` (a `<` can
/// only stand inside a JSON string, where the escape means the same).
fn script_safe(json: &str) -> String {
    json.replace('<', "\\u003c")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_value_can_close_the_script_it_sits_in() {
        let v = serde_json::json!({ "name": "</script><script>alert(1)</script><!--" });
        let safe = script_safe(&v.to_string());
        assert!(!safe.contains('<'), "{safe}");
        assert_eq!(serde_json::from_str::<Value>(&safe).unwrap(), v);
    }
}
