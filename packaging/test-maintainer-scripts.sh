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

sh "$scripts/postinst" configure
token=$(cat /etc/allerta/credentials/dlr-token)
sh "$scripts/postinst" configure    # idempotent: a reinstall changes nothing
if [[ $(cat /etc/allerta/credentials/dlr-token) == "$token" ]]; then echo "dlr-token kept"; fi
if [[ ${#token} -ge 16 && $token =~ ^[A-Za-z0-9]+$ ]]; then echo "dlr-token random letters and digits"; fi
if [[ ! -s /etc/allerta/credentials/telegram-token ]]; then echo "telegram-token left to the officer"; fi
echo "user $(getent passwd allerta | cut -d: -f1,6,7)"
echo "system-uid $(($(id -u allerta) < 1000))"
stat -c '%U:%G %a %n' /var/lib/allerta /var/www/allerta /etc/allerta/contacts \
    /etc/allerta/credentials /etc/allerta/credentials/*

sh "$scripts/prerm" remove
sh "$scripts/postrm" remove
echo "after-remove $(ls /etc/allerta/credentials | wc -l) credentials"
sh "$scripts/postrm" purge
if [[ -e /etc/allerta/credentials ]]; then echo "after-purge credentials kept"; else echo "after-purge credentials gone"; fi
if [[ -d /var/lib/allerta ]]; then echo "after-purge ledger kept"; fi
