#!/usr/bin/env bash
# Runs the package's maintainer scripts for real, as root, inside a private
# mount namespace whose /etc is a copy and whose /var is empty: the host's
# users, /etc and /var are never touched. Used by tests/package.rs.
#
#   unshare -m --propagation private packaging/test-maintainer-scripts.sh WORKDIR
#
# Prints what the scripts left behind, one `owner:group mode path` per line.
set -euo pipefail

work=$1
scripts=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/debian
mkdir -p "$work/etc" "$work/var"
cp -a /etc/. "$work/etc/"
mount --bind "$work/etc" /etc
mount --bind "$work/var" /var
# No systemd here: the scripts must then skip every systemctl call.
if [[ -d /run/systemd/system ]]; then
    mount -t tmpfs tmpfs /run
fi

creds=/etc/allerta/credentials
# A umask that would make new files world-readable: the modes come from
# the script, not from whoever runs dpkg.
(umask 0000; sh "$scripts/postinst" configure)
token=$(cat $creds/dlr-token)
for name in telegram-token sms-password smtp-password voice-token facebook-token \
    mastodon-token bluesky-password; do
    if [[ -f $creds/$name && ! -s $creds/$name ]]; then echo "$name left to the officer"; fi
done
# The officer fills two secrets; an upgrade from a release that did not
# know the social channels finds no facebook-token yet.
echo voice-secret >$creds/voice-token
echo telegram-secret >$creds/telegram-token
rm $creds/facebook-token
(umask 0000; sh "$scripts/postinst" configure 0.1.0)    # an upgrade changes nothing set
if [[ $(cat $creds/dlr-token) == "$token" ]]; then echo "dlr-token kept"; fi
if [[ ${#token} -ge 16 && $token =~ ^[A-Za-z0-9]+$ ]]; then echo "dlr-token random letters and digits"; fi
if [[ $(cat $creds/voice-token) == voice-secret ]]; then echo "voice-token kept"; fi
if [[ $(cat $creds/telegram-token) == telegram-secret ]]; then echo "telegram-token kept"; fi
if [[ -f $creds/facebook-token && ! -s $creds/facebook-token ]]; then echo "facebook-token created on upgrade"; fi
echo "user $(getent passwd allerta | cut -d: -f1,6,7)"
echo "system-uid $(($(id -u allerta) < 1000))"
stat -c '%U:%G %a %n' /var/lib/allerta /var/www/allerta /etc/allerta/contacts \
    /etc/allerta/credentials /etc/allerta/credentials/*

sh "$scripts/prerm" remove
sh "$scripts/postrm" remove
echo "after-remove $(ls /etc/allerta/credentials | wc -l) credentials"
# A file the officer added there is theirs: purge leaves it (and the directory).
echo mine >$creds/site-notes
sh "$scripts/postrm" purge
echo "after-purge left $(ls $creds)"
rm $creds/site-notes
sh "$scripts/postrm" purge
if [[ -e /etc/allerta/credentials ]]; then echo "after-purge credentials kept"; else echo "after-purge credentials gone"; fi
if [[ -d /var/lib/allerta ]]; then echo "after-purge ledger kept"; fi
