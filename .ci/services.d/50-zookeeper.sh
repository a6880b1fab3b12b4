# ZooKeeper (127.0.0.1:2181, standalone, data under /var/lib/taskflow-ci/zookeeper)
# Its own config (not the package's example one): loopback only, no admin HTTP
# server (port 8080 belongs to others), the four-letter words kazoo uses
# (ruok; envi for the server version check) enabled.
zk_ok() {
  [[ "$(exec 3<>/dev/tcp/127.0.0.1/2181 && printf ruok >&3 && head -c4 <&3)" == imok ]]
}
if ! zk_ok 2>/dev/null; then
  [[ -f /usr/share/java/zookeeper.jar ]] || apt_install zookeeper
  zk_dir=/var/lib/taskflow-ci/zookeeper
  mkdir -p "$zk_dir/data" "$zk_dir/log"
  cat > "$zk_dir/zoo.cfg" <<CFG
tickTime=2000
dataDir=$zk_dir/data
clientPort=2181
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=ruok,envi,srvr,stat,cons
CFG
  # setsid+nohup: the server outlives this script (and CI's shell).
  setsid nohup java -Xmx256m -Dzookeeper.log.dir="$zk_dir/log" \
    -Dzookeeper.root.logger=INFO,CONSOLE \
    -cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$zk_dir/zoo.cfg" \
    >"$zk_dir/log/zookeeper.out" 2>&1 </dev/null &
  unset zk_dir
fi
wait_for ZooKeeper zk_ok
