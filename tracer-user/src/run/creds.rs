//! Who `run`'s command runs as: the user who invoked the tracer (through
//! sudo: `SUDO_UID`/`SUDO_GID`), or `--user`; never the tracer's root.
use std::ffi::{CStr, CString};

use super::spawn::Credentials;

/// The credentials for the command: `--user` when given, else the sudo
/// caller when the tracer runs as root, else None (the tracer's own user,
/// who is then the invoking user).
pub fn for_command(user: Option<&str>) -> Result<Option<Credentials>, String> {
    if let Some(user) = user {
        return by_name_or_uid(user)
            .map(Some)
            .ok_or_else(|| format!("--user {user}: no such user"));
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let Some(uid) = env_id("SUDO_UID")? else {
        return Ok(None);
    };
    let entry = passwd_by_uid(uid);
    let gid = match env_id("SUDO_GID")? {
        Some(gid) => gid,
        None => entry.as_ref().map_or(uid, |e| e.1),
    };
    let groups = match entry {
        Some((name, _)) => group_list(&name, gid),
        None => vec![gid],
    };
    Ok(Some(Credentials { uid, gid, groups }))
}

fn env_id(name: &str) -> Result<Option<u32>, String> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("{name}={v} is not a numeric id")),
        Err(_) => Ok(None),
    }
}

fn by_name_or_uid(user: &str) -> Option<Credentials> {
    let (name, uid, gid) = match user.parse::<u32>() {
        Ok(uid) => match passwd_by_uid(uid) {
            Some((name, gid)) => (Some(name), uid, gid),
            None => (None, uid, uid),
        },
        Err(_) => {
            let c = CString::new(user).ok()?;
            // SAFETY: getpwnam returns a static entry or null; we copy out at once
            // (the tracer looks users up on this thread only, before the fork).
            let pw = unsafe { libc::getpwnam(c.as_ptr()) };
            if pw.is_null() {
                return None;
            }
            // SAFETY: non-null entry from getpwnam.
            let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
            (Some(c), uid, gid)
        }
    };
    let groups = name.map_or_else(|| vec![gid], |n| group_list(&n, gid));
    Some(Credentials { uid, gid, groups })
}

/// (name, primary gid) of `uid`.
fn passwd_by_uid(uid: u32) -> Option<(CString, u32)> {
    // SAFETY: as in `by_name_or_uid`.
    let pw = unsafe { libc::getpwuid(uid) };
    if pw.is_null() {
        return None;
    }
    // SAFETY: non-null entry; pw_name is a C string.
    let (name, gid) = unsafe { (CStr::from_ptr((*pw).pw_name).to_owned(), (*pw).pw_gid) };
    Some((name, gid))
}

/// The supplementary groups of user `name` (with `gid`), as initgroups would.
fn group_list(name: &CStr, gid: u32) -> Vec<u32> {
    let mut n: libc::c_int = 64;
    let mut groups = vec![0 as libc::gid_t; n as usize];
    // SAFETY: `groups` has room for `n` entries; getgrouplist says how many.
    let got = unsafe { libc::getgrouplist(name.as_ptr(), gid, groups.as_mut_ptr(), &mut n) };
    if got < 0 {
        groups.resize(n.max(0) as usize, 0);
        // SAFETY: as above, with the size it asked for.
        unsafe { libc::getgrouplist(name.as_ptr(), gid, groups.as_mut_ptr(), &mut n) };
    }
    groups.truncate(n.max(0) as usize);
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_numeric_user_without_an_entry_gets_its_own_gid() {
        let c = by_name_or_uid("4000000").expect("numeric uid");
        assert_eq!(
            (c.uid, c.gid, c.groups),
            (4_000_000, 4_000_000, vec![4_000_000])
        );
    }

    #[test]
    fn root_by_name_is_uid_0() {
        let c = by_name_or_uid("root").expect("root exists");
        assert_eq!((c.uid, c.gid), (0, 0));
        assert!(c.groups.contains(&0));
    }
}
