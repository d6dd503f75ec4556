#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Sourced by the benchmarks that compare Stowage with a direct client of a test server (cloud.sh,
# link_cache.sh), after lib.sh. The test server's .env must be sourced first (STORAGE_*).
# Direct clients. setup_direct_<name> reads the server's .env; direct_url_<name> BUCKET KEY prints
# a URL (+ curl header args via $direct_hdr) that a plain curl GET can fetch; direct_put_<name>
# FILE BUCKET KEY uploads with the real client; direct_rm_<name> BUCKET KEY deletes.
direct_hdr=()

setup_direct_radosgw() {
  s3_ep=http://127.0.0.1:$STORAGE_PORT
  export AWS_ACCESS_KEY_ID=$STORAGE_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$STORAGE_SECRET_KEY AWS_DEFAULT_REGION=$STORAGE_REGION
  unset AWS_CA_BUNDLE
  direct_client="aws s3 ($(aws --version 2>&1 | awk '{ print $1 }'))"
}
direct_url_radosgw() {
  cmd "aws s3 presign s3://$1/$2 --endpoint-url $s3_ep --expires-in 3600   # then curl -o /dev/null <url>"
  url=$(aws s3 presign "s3://$1/$2" --endpoint-url "$s3_ep" --expires-in 3600)
}
direct_put_radosgw() {
  cmd "aws s3 cp --only-show-errors $1 s3://$2/$3 --endpoint-url $s3_ep"
  aws s3 cp --only-show-errors "$1" "s3://$2/$3" --endpoint-url "$s3_ep"
}
direct_rm_radosgw() { aws s3 rm --only-show-errors "s3://$1/$2" --endpoint-url "$s3_ep"; }

setup_direct_azurite() {
  export RCLONE_CONFIG_AZ_TYPE=azureblob RCLONE_CONFIG_AZ_ACCOUNT=$STORAGE_ACCESS_KEY \
    RCLONE_CONFIG_AZ_KEY=$STORAGE_SECRET_KEY RCLONE_CONFIG_AZ_ENDPOINT=$STORAGE_ENDPOINT \
    RCLONE_CONFIG_AZ_USE_EMULATOR=true RCLONE_CONFIG=$work/rclone.conf
  touch "$RCLONE_CONFIG"
  direct_client="rclone ($(rclone version | awk 'NR == 1 { print $2 }')), curl with a service SAS"
}
direct_url_azurite() {  # service SAS (sv=2019-12-12, sr=b, sp=r), signed with the account key
  cmd "curl -o /dev/null '$STORAGE_ENDPOINT/$1/$2?sv=2019-12-12&sr=b&sp=r&se=…&sig=…'   # SAS: HMAC-SHA256 with the account key"
  url=$(python3 - "$STORAGE_ENDPOINT" "$STORAGE_ACCESS_KEY" "$STORAGE_SECRET_KEY" "$1" "$2" <<'EOF'
import base64, datetime, hashlib, hmac, sys, urllib.parse
ep, account, key, container, blob = sys.argv[1:]
se = (datetime.datetime.utcnow() + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
sv = "2019-12-12"
resource = f"/blob/{account}/{container}/{blob}"
to_sign = "\n".join(["r", "", se, resource, "", "", "", sv, "b", "", "", "", "", "", ""])
sig = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()).decode()
q = urllib.parse.urlencode({"sv": sv, "sr": "b", "sp": "r", "se": se, "sig": sig})
print(f"{ep}/{container}/{urllib.parse.quote(blob)}?{q}")
EOF
)
}
direct_put_azurite() {
  cmd "rclone copyto $1 az:$2/$3   # RCLONE_CONFIG_AZ_{TYPE=azureblob,ACCOUNT,KEY,ENDPOINT=$STORAGE_ENDPOINT,USE_EMULATOR=true}"
  rclone copyto "$1" "az:$2/$3"
}
direct_rm_azurite() { rclone deletefile "az:$1/$2"; }

setup_direct_gcs() {
  # The fake has no compose: gcloud's parallel composite upload (files > 150 MiB) would fail.
  export CLOUDSDK_CONFIG=$work/gcloud CLOUDSDK_CORE_DISABLE_PROMPTS=1 CLOUDSDK_STORAGE_PARALLEL_COMPOSITE_UPLOAD_ENABLED=False
  export CLOUDSDK_AUTH_TOKEN_HOST=$STORAGE_ENDPOINT/token
  export CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE=$STORAGE_ENDPOINT/
  gcloud auth activate-service-account --key-file="$STORAGE_CREDENTIALS_PATH" >/dev/null 2>&1 ||
    die "gcloud auth activate-service-account failed"
  gcs_token=$(gcloud auth print-access-token 2>/dev/null) || die "gcloud auth print-access-token failed"
  direct_client="gcloud storage ($(gcloud --version 2>/dev/null | awk 'NR == 1 { print $4 }')), curl with a bearer token"
}
direct_url_gcs() {
  gcs_token=$(gcloud auth print-access-token 2>/dev/null) || die "gcloud auth print-access-token failed"
  direct_hdr=(-H "Authorization: Bearer $gcs_token")
  local enc
  enc=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$2")
  cmd "curl -o /dev/null -H 'Authorization: Bearer \$(gcloud auth print-access-token)' '$STORAGE_ENDPOINT/storage/v1/b/$1/o/$enc?alt=media'"
  url="$STORAGE_ENDPOINT/storage/v1/b/$1/o/$enc?alt=media"
}
direct_put_gcs() {
  cmd "gcloud storage cp $1 gs://$2/$3   # CLOUDSDK_STORAGE_PARALLEL_COMPOSITE_UPLOAD_ENABLED=False CLOUDSDK_AUTH_TOKEN_HOST=$CLOUDSDK_AUTH_TOKEN_HOST CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE=$CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE"
  gcloud storage cp "$1" "gs://$2/$3" >"$work/gcloud-cp.log" 2>&1 || { tail -5 "$work/gcloud-cp.log" >&2; return 1; }
}
direct_rm_gcs() { gcloud storage rm "gs://$1/$2" >/dev/null 2>&1; }

