// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Camera URLs carry passwords (`rtsp://admin:s3cret@cam/stream`). Everything `beitseg` prints
//! goes through [`masked`], which shows the userinfo of every URL in a text as `***`: errors,
//! warnings, status and reconnect lines, the closing line.

/// The one masking function (the element's and the metrics' too).
pub(crate) use gstbeitseg::secrets::masked;

/// `text` with every `${NAME}` replaced by the environment variable NAME (an error names the
/// variable that is not set, never its value). A value put into a URL's userinfo (before the
/// `@` of `scheme://user:${P}@host`) is percent-encoded, so that a password holding `@`, `/`,
/// `:`, `#` or `?` stays a password and cannot move the credentials to another host; it is
/// decoded again where the credentials are handed to GStreamer.
pub(crate) fn expand_env(text: &str) -> anyhow::Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            anyhow::bail!("input: an unclosed ${{ in it");
        };
        let name = &after[..end];
        let value = std::env::var(name)
            .map_err(|_| anyhow::anyhow!("input: the environment variable {name} is not set"))?;
        rest = &after[end + 1..];
        if in_userinfo(&out, rest) {
            out.push_str(&gstbeitseg::secrets::encode_userinfo(&value));
        } else {
            out.push_str(&value);
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether a substitution between `before` and `after` (the template's own text) sits in a
/// URL's userinfo: after `://`, with no `/` between, and an `@` to come before the next `/`.
fn in_userinfo(before: &str, after: &str) -> bool {
    let Some(scheme_end) = before.rfind("://") else {
        return false;
    };
    if before[scheme_end + 3..].contains(['/', '@']) {
        return false;
    }
    let authority_end = after.find('/').unwrap_or(after.len());
    after[..authority_end].contains('@')
}

/// The input as given (`${NAME}` expanded), or the first line of `--input-file` (a file others
/// may read is a warning).
pub(crate) fn resolve_input(args: &crate::args::RunArgs) -> anyhow::Result<String> {
    let text = match &args.input_file {
        Some(file) => {
            let content = std::fs::read_to_string(file)
                .map_err(|e| anyhow::anyhow!("--input-file {}: {e}", file.display()))?;
            crate::server::warn_if_shared(file);
            content
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#'))
                .ok_or_else(|| anyhow::anyhow!("--input-file {}: no input in it", file.display()))?
                .to_string()
        }
        None => args.input.clone(),
    };
    expand_env(&text)
}

#[cfg(test)]
mod tests {
    use super::expand_env;

    #[test]
    fn environment_variables_fill_in_the_input() {
        // PATH is set in every process; no set_var in a multi-threaded test binary.
        let path = std::env::var("PATH").unwrap();
        assert_eq!(
            expand_env("rtsp://cam/${PATH}").unwrap(),
            format!("rtsp://cam/{path}")
        );
        let err = expand_env("rtsp://a:${BEITSEG_NOT_SET_ANYWHERE}@c/x").unwrap_err();
        assert!(err
            .to_string()
            .contains("BEITSEG_NOT_SET_ANYWHERE is not set"));
        assert_eq!(expand_env("plain.mp4").unwrap(), "plain.mp4");
    }

    #[test]
    fn a_substituted_password_stays_in_the_userinfo() {
        // HOME is set in every process; no set_var in a multi-threaded test binary.
        let home = std::env::var("HOME").unwrap();
        let encoded = gstbeitseg::secrets::encode_userinfo(&home);
        assert_eq!(
            expand_env("rtsp://admin:${HOME}@127.0.0.1:1/cam").unwrap(),
            format!("rtsp://admin:{encoded}@127.0.0.1:1/cam")
        );
        assert_eq!(
            expand_env("rtsp://${HOME}@cam/x").unwrap(),
            format!("rtsp://{encoded}@cam/x")
        );
        // Elsewhere (a path, a host, a file name) a value is used as it is.
        assert_eq!(
            expand_env("rtsp://cam${HOME}").unwrap(),
            format!("rtsp://cam{home}")
        );
        assert_eq!(
            expand_env("${HOME}/a.mp4").unwrap(),
            format!("{home}/a.mp4")
        );
        assert_eq!(
            expand_env("rtsp://cam/x@${HOME}").unwrap(),
            format!("rtsp://cam/x@{home}")
        );
    }
}
