# etcd (127.0.0.1:2379, v3 JSON gateway at /v3/; data under /var/lib/etcd-ci)
if ! command -v etcd >/dev/null 2>&1; then
  apt_install etcd-server
fi
if ! curl -fsS -m 2 http://127.0.0.1:2379/health >/dev/null 2>&1; then
  mkdir -p /var/lib/etcd-ci /var/log/etcd
  nohup etcd --name ci --data-dir /var/lib/etcd-ci \
    --listen-client-urls http://127.0.0.1:2379 \
    --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 \
    --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster ci=http://127.0.0.1:2380 \
    >>/var/log/etcd/ci.log 2>&1 </dev/null &
  disown 2>/dev/null || true
fi
wait_for etcd curl -fsS -m 2 http://127.0.0.1:2379/health
