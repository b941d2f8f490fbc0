//! "Did you mean" for a misspelt name: the closest of the known names, by
//! Jaro-Winkler similarity (as clap suggests subcommands), when it is close.

/// The known name closest to `word`, when it is similar enough (a
/// Jaro-Winkler similarity of at least 0.8) to be a misspelling of it.
pub fn closest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .filter(|k| *k != word)
        .map(|k| (strsim::jaro_winkler(word, k), k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// `"; did you mean `name`?"` for the closest known name, or nothing:
/// appended to an error that names an unknown `word`.
pub fn did_you_mean<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    closest(word, known).map_or(String::new(), |k| format!("; did you mean `{k}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelling_gets_its_name_and_a_stranger_nothing() {
        let known = ["classifier", "most_frequent", "cooccurrence", "sft"];
        assert_eq!(closest("clasifier", known), Some("classifier"));
        assert_eq!(closest("classifer", known), Some("classifier"));
        assert_eq!(closest("cooccurence", known), Some("cooccurrence"));
        assert_eq!(closest("zebra", known), None);
        assert_eq!(did_you_mean("clasifier", known), "; did you mean `classifier`?");
        assert_eq!(did_you_mean("zebra", known), "");
    }
}
