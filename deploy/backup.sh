#!/bin/sh
# Back up or restore Crieur's JetStream data (every stream and bucket: notices, registry,
# staff tokens, subscribers...). nats-server must be stopped (docs/operations/deployment.md, "Backup"):
# a copy of a store being written is not consistent.
#   deploy/backup.sh backup  /var/lib/crieur/nats  /srv/backups/crieur-$(date +%F).tar.gz
#   deploy/backup.sh restore /srv/backups/crieur-2026-12-01.tar.gz  /var/lib/crieur/nats
set -eu

usage() {
    echo "usage: $0 backup STORE_DIR ARCHIVE | restore ARCHIVE STORE_DIR" >&2
    exit 2
}

[ $# -eq 3 ] || usage
case "$1" in
backup)
    store=$2 archive=$3
    [ -d "$store/jetstream" ] || { echo "$store holds no JetStream data" >&2; exit 1; }
    # Written beside, then renamed: a failed backup never looks like a good one.
    tar -C "$store" -czf "$archive.part" jetstream
    mv "$archive.part" "$archive"
    echo "backed up $store to $archive"
    ;;
restore)
    archive=$2 store=$3
    [ -f "$archive" ] || { echo "no archive $archive" >&2; exit 1; }
    # Never mix two stores: restore into an empty place only.
    if [ -e "$store/jetstream" ]; then
        echo "$store/jetstream exists: move it away first" >&2
        exit 1
    fi
    mkdir -p "$store"
    tar -C "$store" -xzf "$archive"
    echo "restored $archive into $store"
    ;;
*)
    usage
    ;;
esac
