// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Camera URLs carry passwords (`rtsp://admin:s3cret@cam/stream`). Everything `beitseg` prints
//! goes through [`masked`], which shows the userinfo of every URL in a text as `***`: errors,
//! warnings, status and reconnect lines, the closing line.

/// `text` with the userinfo (`user:password@`) of every URL in it replaced by `***@`.
pub(crate) fn masked(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        // The authority runs to the first '/', '?', '#' or white space.
        let end = after
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(userinfo_end) => {
                out.push_str("***");
                out.push_str(&authority[userinfo_end..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// `text` with every `${NAME}` replaced by the environment variable NAME (an error names the
/// variable that is not set, never its value).
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
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
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
    use super::{expand_env, masked};

    #[test]
    fn environment_variables_fill_in_the_input() {
        // PATH is set in every process; no set_var in a multi-threaded test binary.
        let path = std::env::var("PATH").unwrap();
        assert_eq!(
            expand_env("rtsp://a:${PATH}@cam/x").unwrap(),
            format!("rtsp://a:{path}@cam/x")
        );
        let err = expand_env("rtsp://a:${BEITSEG_NOT_SET_ANYWHERE}@c/x").unwrap_err();
        assert!(err
            .to_string()
            .contains("BEITSEG_NOT_SET_ANYWHERE is not set"));
        assert_eq!(expand_env("plain.mp4").unwrap(), "plain.mp4");
    }

    #[test]
    fn userinfo_is_masked_wherever_a_url_appears() {
        assert_eq!(
            masked("error: camera rtsp://admin:s3cret@127.0.0.1:9/stream: Could not open"),
            "error: camera rtsp://***@127.0.0.1:9/stream: Could not open"
        );
        assert_eq!(
            masked("http://u@h/a http://h/b"),
            "http://***@h/a http://h/b"
        );
        // A password holding '@' or ':' is masked whole.
        assert_eq!(masked("rtsp://a:b@c:d@[::1]:8554"), "rtsp://***@[::1]:8554");
        assert_eq!(masked("no url here"), "no url here");
        assert_eq!(masked("rtsp://cam/x?user=a"), "rtsp://cam/x?user=a");
    }
}
