#!/usr/bin/python3
"""Builder of the one-machine cluster (tests/cluster/README.md).

  cluster.py up SPEC      build everything (called by tests/cluster/up)

Also imported by apiserver.py: its "kubelet" (api_kubelet.py) starts pods
with the same functions (new_pod_netns, start_container, pod_object ...).

Everything lives in network namespaces named mtc-*; the host namespace gets
no address, no route and no firewall rule.
"""
import base64
import hashlib
import json
import os
import shlex
import socket
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
POD_SERVERS = os.path.join(os.path.dirname(HERE), "pod", "servers.py")
STATE = os.environ.get("MIRRORD_TRACE_CLUSTER_DIR", "/run/mirrord-trace-cluster")

PREFIX = "mtc-"
NODE_NS = "mtc-node"
WS_NS = "mtc-ws"
BRIDGE = "mtcbr0"
BRIDGE_IP = "10.244.0.1"
POD_CIDR = "10.244.0.0/16"
SVC_CIDR = "10.96.0.0/12"
API_IP = "10.255.255.1"  # node side of the workstation link: the API server
WS_IP = "10.255.255.2"  # workstation side
API_PORT = 6443
K8S_SVC_IP = "10.96.0.1"
DNS_SVC_IP = "10.96.0.10"
DOMAIN = "cluster.local"
CGROUP_ROOT = ("/sys/fs/cgroup/pids/mtc-kubepods" if os.path.isdir("/sys/fs/cgroup/pids")
               else "/sys/fs/cgroup/mtc-kubepods")
ALNUM = "bcdfghjklmnpqrstvwxz2456789"  # k8s rand.SafeEncodeString alphabet
PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def log(msg):
    sys.stderr.write("tests/cluster: %s\n" % msg)


def run(*args, check=True, input=None):
    r = subprocess.run(args, input=input, capture_output=True, text=True, timeout=20)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(args), r.stderr.strip()))
    return r.stdout


def ipb(ns, cmds):
    """Run 'ip -batch' inside netns NS (None = host)."""
    pre = ["ip", "-n", ns] if ns else ["ip"]
    run(*pre, "-batch", "-", input="\n".join(cmds) + "\n")


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def safe_rand(seed, n):
    h = hashlib.sha256(seed.encode()).digest()
    return "".join(ALNUM[b % len(ALNUM)] for b in h[:n])


def uid_of(seed):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "mtc:" + seed))


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def sa_token(ns, pod, sa="default"):
    """A JWT-shaped service-account token (signature is random: the fake
    API server looks tokens up, it does not verify them)."""
    hdr = b64u(json.dumps({"alg": "RS256", "kid": "mtc"}).encode())
    body = b64u(json.dumps({
        "iss": "https://kubernetes.default.svc.cluster.local", "sub": "system:serviceaccount:%s:%s" % (ns, sa),
        "aud": ["https://kubernetes.default.svc.cluster.local"],
        "kubernetes.io": {"namespace": ns, "pod": {"name": pod}, "serviceaccount": {"name": sa}}}).encode())
    return "%s.%s.%s" % (hdr, body, b64u(os.urandom(32)))


# ---------------------------------------------------------------- images

def agent_bin_choice():
    """(path, from what) of the program the image mirrord-trace-agent:dev
    runs. The first of these that is set decides, so a wrong setting fails
    instead of silently running another build: $MIRRORD_TRACE_AGENT_BIN,
    then $MT_BIN_DIR/mirrord-trace-agent (the variable of tests/e2e and
    bench/), then the build tree <repo>/build/bin/mirrord-trace-agent (what
    scripts/demo and a plain cmake -B build make)."""
    if os.environ.get("MIRRORD_TRACE_AGENT_BIN"):
        return os.path.abspath(os.environ["MIRRORD_TRACE_AGENT_BIN"]), "$MIRRORD_TRACE_AGENT_BIN"
    if os.environ.get("MT_BIN_DIR"):
        return os.path.abspath(os.path.join(os.environ["MT_BIN_DIR"], "mirrord-trace-agent")), "$MT_BIN_DIR"
    return os.path.join(REPO, "build", "bin", "mirrord-trace-agent"), "the build tree"


def agent_bin():
    """The agent program if it exists and is executable, else None."""
    path, _ = agent_bin_choice()
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def image_command(ctr, agent=None):
    """argv for a container: spec command/args win; else the image's default."""
    image = ctr.get("image", "")
    port = None
    for p in ctr.get("ports") or []:
        port = p.get("containerPort")
        break
    base = image.split(":")[0]
    if base.endswith("mirrord-trace-agent"):
        exe = agent or agent_bin()
        if not exe:
            return None
        cmd = ctr.get("command") or []
        # The image's entrypoint is the agent; a command naming it is mapped.
        if cmd and os.path.basename(cmd[0]) == "mirrord-trace-agent":
            return [exe] + cmd[1:] + (ctr.get("args") or [])
        return [exe] + (ctr.get("args") or [])
    if ctr.get("command"):
        return list(ctr["command"]) + list(ctr.get("args") or [])
    if base == "mt/http-server":
        return ["/usr/bin/python3", "-u", POD_SERVERS, "http", "::", str(port or 80)]
    if base == "mt/udp-echo":
        return ["/usr/bin/python3", "-u", POD_SERVERS, "udp", "0.0.0.0", str(port or 9999)]
    if base == "mt/redis":
        return ["redis-server", "--port", str(port or 6379), "--bind", "0.0.0.0",
                "--protected-mode", "no", "--save", "", "--appendonly", "no",
                "--daemonize", "no", "--dir", "/tmp", "--logfile", ""]
    if base in ("mt/sleep", "busybox", "alpine", "debian"):
        return ["/bin/sleep", "infinity"] + []
    return None


# ---------------------------------------------------------------- network

def netns_path(name):
    return "/run/netns/" + name


def setup_node(pki_dir):
    for ns in (NODE_NS, WS_NS):
        run("ip", "netns", "add", ns)
    ipb(NODE_NS, [
        "link set lo up",
        # A fixed MAC: a bridge without one takes the lowest MAC of its
        # ports, so a new pod's veth could change it, and every pod's ARP
        # entry for the gateway would then point nowhere for seconds.
        "link add %s address 02:6d:74:63:00:01 type bridge forward_delay 0 stp_state 0" % BRIDGE,
        "addr add %s/16 dev %s" % (BRIDGE_IP, BRIDGE),
        "link set %s up" % BRIDGE,
        # the workstation link, created inside the namespaces (never the host)
        "link add mtcws0 type veth peer name eth0 netns %s" % WS_NS,
        "addr add %s/32 dev mtcws0" % API_IP,
        "link set mtcws0 up",
        "route add %s/32 dev mtcws0" % WS_IP,
    ])
    ipb(WS_NS, [
        "link set lo up",
        "addr add %s/32 dev eth0" % WS_IP,
        "link set eth0 up",
        "route add %s/32 dev eth0" % API_IP,  # the API server only
    ])
    # The node forwards nothing between the workstation and pods.
    run("ip", "netns", "exec", NODE_NS, "sysctl", "-qw", "net.ipv4.ip_forward=0")


def veth_name(idx):
    return "mtcv%d" % idx


def new_pod_netns(idx, ip):
    ns = "%sp%d" % (PREFIX, idx)
    run("ip", "netns", "add", ns)
    ipb(ns, [
        "link set lo up",
        "link add eth0 type veth peer name %s netns %s" % (veth_name(idx), NODE_NS),
        "addr add %s/16 dev eth0" % ip,
        "link set eth0 up",
        "route add default via %s" % BRIDGE_IP,
    ])
    ipb(NODE_NS, ["link set %s master %s up" % (veth_name(idx), BRIDGE)])
    return ns


def service_rules(services, endpoints):
    """iptables-restore text for a pod namespace: kube-proxy-like DNAT of
    every ClusterIP (the pod's OUTPUT chain)."""
    lines = ["*nat", ":MTC-SERVICES - [0:0]", "-A OUTPUT -d %s -j MTC-SERVICES" % SVC_CIDR]
    for svc in services:
        ip = svc["spec"]["clusterIP"]
        key = (svc["metadata"]["namespace"], svc["metadata"]["name"])
        for port in svc["spec"]["ports"]:
            proto = port.get("protocol", "TCP").lower()
            eps = endpoints.get(key, [])
            tport = port.get("targetPort", port["port"])
            if not eps:
                lines.append("-A MTC-SERVICES -d %s/32 -p %s --dport %d -j REJECT" % (ip, proto, port["port"])
                             if proto == "tcp" else "-A MTC-SERVICES -d %s/32 -p %s --dport %d -j DROP"
                             % (ip, proto, port["port"]))
                continue
            for i, ep in enumerate(eps):
                left = len(eps) - i
                stat = "" if left == 1 else "-m statistic --mode random --probability %.5f " % (1.0 / left)
                lines.append("-A MTC-SERVICES -d %s/32 -p %s -m %s --dport %d %s-j DNAT --to-destination %s:%s"
                             % (ip, proto, proto, port["port"], stat, ep, tport))
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def apply_service_rules(ns, text):
    run("ip", "netns", "exec", ns, "iptables-restore", input=text)


# ---------------------------------------------------------------- kube-dns pod records

def dns_hosts_dir():
    """dnsmasq's --hostsdir: one hosts file per running pod. dnsmasq watches it
    with inotify, so records appear and disappear as the kubelet starts and
    deletes pods (a written or renamed-in file is read, a removed one's
    records go)."""
    return STATE + "/dns-hosts"


def write_pod_dns(ns, name, ip, hostname=None, subdomain=None):
    """The pod's A records: a-b-c-d.<ns>.pod.cluster.local, and with a
    subdomain (StatefulSet) <hostname>.<subdomain>.<ns>.svc.cluster.local."""
    names = ["%s.%s.pod.%s" % (ip.replace(".", "-"), ns, DOMAIN)]
    if subdomain and hostname:
        names.append("%s.%s.%s.svc.%s" % (hostname, subdomain, ns, DOMAIN))
    os.makedirs(dns_hosts_dir(), exist_ok=True)
    # Written beside the directory, then renamed in: dnsmasq never reads half a file.
    tmp = "%s/.dns-%s_%s.tmp" % (STATE, ns, name)
    with open(tmp, "w") as f:
        f.write("%s %s\n" % (ip, " ".join(names)))
    os.rename(tmp, "%s/%s_%s" % (dns_hosts_dir(), ns, name))


def remove_pod_dns(ns, name):
    try:
        os.unlink("%s/%s_%s" % (dns_hosts_dir(), ns, name))
    except FileNotFoundError:
        pass


# ---------------------------------------------------------------- pods

def svc_env_name(name):
    return name.upper().replace("-", "_")


def service_env(services, ns):
    env = []
    for svc in services:
        if svc["metadata"]["namespace"] != ns and svc["metadata"]["name"] != "kubernetes":
            continue
        if svc["metadata"]["name"] == "kubernetes" and svc["metadata"]["namespace"] != "default":
            continue
        n = svc_env_name(svc["metadata"]["name"])
        ip = svc["spec"]["clusterIP"]
        ports = svc["spec"]["ports"]
        env.append((n + "_SERVICE_HOST", ip))
        env.append((n + "_SERVICE_PORT", str(ports[0]["port"])))
        for p in ports:
            if p.get("name"):
                env.append((n + "_SERVICE_PORT_" + svc_env_name(p["name"]), str(p["port"])))
        proto = ports[0].get("protocol", "TCP")
        env.append((n + "_PORT", "%s://%s:%d" % (proto.lower(), ip, ports[0]["port"])))
        for p in ports:
            pr = p.get("protocol", "TCP")
            pre = "%s_PORT_%d_%s" % (n, p["port"], pr)
            env += [(pre, "%s://%s:%d" % (pr.lower(), ip, p["port"])), (pre + "_PROTO", pr.lower()),
                    (pre + "_PORT", str(p["port"])), (pre + "_ADDR", ip)]
    return env


def write_pod_files(pdir, pod_name, ns, ip, hostname, subdomain, token, ca_pem, host_aliases=()):
    os.makedirs(pdir + "/run/secrets/kubernetes.io/serviceaccount", exist_ok=True)
    fqdn = "%s.%s.%s.svc.%s" % (hostname, subdomain, ns, DOMAIN) if subdomain else None
    with open(pdir + "/hosts", "w") as f:
        f.write("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"
                "::1\tlocalhost ip6-localhost ip6-loopback\n")
        f.write("%s\t%s\n" % (ip, ("%s\t%s" % (fqdn, hostname)) if fqdn else hostname))
        for a in host_aliases:
            f.write("%s\t%s\n" % (a["ip"], "\t".join(a.get("hostnames", []))))
    with open(pdir + "/resolv.conf", "w") as f:
        f.write("search %s.svc.%s svc.%s %s\nnameserver %s\noptions ndots:5\n"
                % (ns, DOMAIN, DOMAIN, DOMAIN, DNS_SVC_IP))
    with open(pdir + "/hostname", "w") as f:
        f.write(hostname + "\n")
    sa = pdir + "/run/secrets/kubernetes.io/serviceaccount/"
    for fname, data in (("token", token), ("ca.crt", ca_pem), ("namespace", ns)):
        with open(sa + fname, "w") as f:
            f.write(data)
    write_app_files(pdir + "/app", pod_name, ns)


# Fixed times, so a stat through mirrord-trace can be compared with the pod's.
APP_MTIME = 1600000000  # 2020-09-13
APP_DIR_MTIME = 1600000600


def write_app_files(app, pod_name, ns):
    """The pod's /app (a bind mount in each container): a config naming the
    pod, a data file, a subdirectory and a symlink. Deterministic content and
    times; a container that writes there changes the pod's copy only. No
    name ends in ".d": mirrord's default local list has ".\\.d$", so such a
    directory is the workstation's, not the pod's."""
    os.makedirs(app + "/conf", exist_ok=True)
    os.makedirs(app + "/data", exist_ok=True)
    files = (("config.yaml", "pod: %s\nnamespace: %s\nport: 8080\n" % (pod_name, ns)),
             ("conf/extra.yaml", "extra: true\n"),
             ("data/blob.bin", "".join(chr(48 + i % 10) for i in range(10000))),
             ("README", "the pod's /app\n"))
    for rel, data in files:
        with open(app + "/" + rel, "w") as f:
            f.write(data)
        os.utime(app + "/" + rel, (APP_MTIME, APP_MTIME))
    if not os.path.lexists(app + "/current"):
        os.symlink("config.yaml", app + "/current")
    for d in ("conf", "data", "."):
        os.utime(app + "/" + d, (APP_DIR_MTIME, APP_DIR_MTIME))


def container_id(pod_uid, cname, attempt=0):
    return hashlib.sha256(("%s/%s/%d" % (pod_uid, cname, attempt)).encode()).hexdigest()


def start_container(netns, pdir, pod_uid, hostname, ctr, argv, env, log_path=None, want_proc=False):
    """Start one container: a process in NETNS with its own mount and UTS
    namespaces (and the pod's /etc/hosts, resolv.conf, hostname,
    service-account files and /app), in a cgroup named by its container id.
    Returns (pid, container_id). The pid is the container's main process."""
    cid = container_id(pod_uid, ctr["name"])
    cg = "%s/pod%s/%s" % (CGROUP_ROOT, pod_uid, cid)
    os.makedirs(cg, exist_ok=True)
    pidf = "%s/%s.pid" % (pdir, ctr["name"])
    if os.path.exists(pidf):
        os.unlink(pidf)
    envs = " ".join(shlex.quote("%s=%s" % kv) for kv in env)
    script = """set -e
echo $$ >%(cg)s/cgroup.procs
mount --bind %(d)s/hosts /etc/hosts
mount --bind %(d)s/resolv.conf /etc/resolv.conf
mount --bind %(d)s/hostname /etc/hostname
hostname %(host)s
mount -t sysfs sysfs /sys
mount --bind %(d)s/app /app
echo $$ >%(pidf)s.tmp && mv %(pidf)s.tmp %(pidf)s
mount --bind %(d)s/run /run
cd /
exec env -i %(env)s %(argv)s
""" % {"cg": cg, "d": shlex.quote(pdir), "host": shlex.quote(hostname), "pidf": shlex.quote(pidf),
       "env": envs, "argv": " ".join(shlex.quote(a) for a in argv)}
    sfile = "%s/%s.sh" % (pdir, ctr["name"])
    with open(sfile, "w") as f:
        f.write(script)
    out = open(log_path or "%s/%s.log" % (pdir, ctr["name"]), "ab")
    unshare = ["unshare", "--mount", "--uts", "--fork", "--propagation", "private"]
    # nsenter (not "ip netns exec"): keeps /sys/fs/cgroup visible for the
    # cgroup move; the script mounts the pod's own sysfs afterwards.
    proc = subprocess.Popen(["nsenter", "--net=" + netns_path(netns)] + unshare + ["/bin/sh", sfile],
                     stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                     start_new_session=True, close_fds=True)
    out.close()
    for _ in range(200):
        try:
            with open(pidf) as f:
                pid = int(f.read().strip())
            return (pid, cid, proc) if want_proc else (pid, cid)
        except (FileNotFoundError, ValueError):
            time.sleep(0.02)
    raise RuntimeError("container %s did not start (see %s)" % (ctr["name"], out.name))


def container_env(ctr, services, ns, hostname):
    env = [("PATH", PATH_ENV), ("HOSTNAME", hostname)]
    env += [(e["name"], e.get("value", "")) for e in ctr.get("env") or [] if "name" in e]
    env += service_env(services, ns)
    env.append(("HOME", "/root"))
    return env


def pod_object(name, ns, uid, labels, annotations, containers, node, owner=None,
               hostname=None, subdomain=None, spec_extra=None):
    spec = {"containers": containers, "restartPolicy": "Always", "nodeName": node,
            "serviceAccountName": "default", "schedulerName": "default-scheduler",
            "dnsPolicy": "ClusterFirst", "terminationGracePeriodSeconds": 30,
            "tolerations": [], "enableServiceLinks": True}
    if hostname:
        spec["hostname"] = hostname
    if subdomain:
        spec["subdomain"] = subdomain
    if spec_extra:
        spec.update(spec_extra)
    md = {"name": name, "namespace": ns, "uid": uid, "labels": dict(labels),
          "creationTimestamp": now()}
    if annotations:
        md["annotations"] = dict(annotations)
    if owner:
        md["ownerReferences"] = [owner]
    return {"kind": "Pod", "apiVersion": "v1", "metadata": md, "spec": spec,
            "status": {"phase": "Pending", "qosClass": "BestEffort"}}


def running_status(pod, ip, started, cids):
    ts = started
    st = {"phase": "Running", "hostIP": BRIDGE_IP, "hostIPs": [{"ip": BRIDGE_IP}],
          "podIP": ip, "podIPs": [{"ip": ip}], "startTime": ts, "qosClass": "BestEffort",
          "conditions": [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": ts}
                         for t in ("PodReadyToStartContainers", "Initialized", "Ready",
                                   "ContainersReady", "PodScheduled")],
          "containerStatuses": []}
    for c in pod["spec"]["containers"]:
        st["containerStatuses"].append({
            "name": c["name"], "image": c.get("image", ""),
            "imageID": "docker.io/library/%s@sha256:%s" % (c.get("image", "").split(":")[0],
                                                           hashlib.sha256(c.get("image", "").encode()).hexdigest()),
            "containerID": "containerd://" + cids[c["name"]],
            "ready": True, "started": True, "restartCount": 0,
            "state": {"running": {"startedAt": ts}}, "lastState": {}})
    return st


# ---------------------------------------------------------------- PKI

def make_pki(d):
    os.makedirs(d, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("openssl", "req", "-x509", *ec, "-keyout", d + "/ca.key", "-out", d + "/ca.crt",
        "-days", "30", "-subj", "/CN=mtc-ca", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    sans = ",".join(["IP:%s" % a for a in (API_IP, K8S_SVC_IP, BRIDGE_IP, "127.0.0.1")] +
                    ["DNS:%s" % n for n in ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                                             "kubernetes.default.svc." + DOMAIN, "localhost")])
    for name, subj, ext in (
            ("apiserver", "/CN=kube-apiserver", "subjectAltName=%s\nextendedKeyUsage=serverAuth\n" % sans),
            ("admin", "/O=system:masters/CN=kubernetes-admin", "extendedKeyUsage=clientAuth\n")):
        run("openssl", "req", "-new", *ec, "-keyout", "%s/%s.key" % (d, name),
            "-out", "%s/%s.csr" % (d, name), "-subj", subj)
        with open("%s/%s.ext" % (d, name), "w") as f:
            f.write(ext + "keyUsage=critical,digitalSignature,keyEncipherment\n")
        run("openssl", "x509", "-req", "-in", "%s/%s.csr" % (d, name), "-CA", d + "/ca.crt",
            "-CAkey", d + "/ca.key", "-CAcreateserial", "-days", "30",
            "-out", "%s/%s.crt" % (d, name), "-extfile", "%s/%s.ext" % (d, name))
    for f in os.listdir(d):
        os.chmod(os.path.join(d, f), 0o600)


def b64file(p):
    with open(p, "rb") as f:
        return base64.b64encode(f.read()).decode()


def write_kubeconfig(path, server, pki, token=None):
    user = ("    token: %s\n" % token) if token else (
        "    client-certificate-data: %s\n    client-key-data: %s\n"
        % (b64file(pki + "/admin.crt"), b64file(pki + "/admin.key")))
    with open(path, "w") as f:
        f.write("""apiVersion: v1
kind: Config
preferences: {}
current-context: default
clusters:
- name: mtc
  cluster:
    server: %s
    certificate-authority-data: %s
contexts:
- name: default
  context:
    cluster: mtc
    user: admin
    namespace: default
users:
- name: admin
  user:
%s""" % (server, b64file(pki + "/ca.crt"), user))
    os.chmod(path, 0o600)


# ---------------------------------------------------------------- up

def wait_tcp(ns, targets, seconds=15):
    """Wait (bounded) until every (ip, port, proto) answers, from netns NS."""
    code = r"""
import socket, sys, time, json
todo = json.loads(sys.argv[1]); end = time.time() + float(sys.argv[2])
while todo and time.time() < end:
    left = []
    for ip, port, proto in todo:
        try:
            if proto == "UDP":
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.3)
                s.sendto(b"x", (ip, port)); s.recv(16)
            else:
                socket.create_connection((ip, port), 0.5).close()
        except OSError:
            left.append((ip, port, proto))
    todo = left
    if todo: time.sleep(0.1)
if todo: print(json.dumps(todo)); sys.exit(1)
"""
    r = subprocess.run(["nsenter", "--net=" + netns_path(ns), "/usr/bin/python3", "-c", code,
                        json.dumps(targets), str(seconds)], capture_output=True, text=True, timeout=seconds + 10)
    if r.returncode != 0:
        raise RuntimeError("timed out waiting for %s" % r.stdout.strip())


def workload_pods(w):
    """[(pod name, hostname, subdomain, extra labels, owner)] for a workload."""
    ns, name, kind = w["namespace"], w["name"], w["kind"]
    if kind == "Pod":
        return [(name, name, None, {}, None)]
    out = []
    if kind == "Deployment":
        h = safe_rand("rs/%s/%s" % (ns, name), 10)
        rs = "%s-%s" % (name, h)
        owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": uid_of("rs/%s/%s" % (ns, rs)),
                 "controller": True, "blockOwnerDeletion": True}
        for i in range(w.get("replicas", 1)):
            pn = "%s-%s" % (rs, safe_rand("pod/%s/%s/%d" % (ns, rs, i), 5))
            out.append((pn, pn, None, {"pod-template-hash": h}, owner))
    elif kind == "StatefulSet":
        owner = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": name,
                 "uid": uid_of("sts/%s/%s" % (ns, name)), "controller": True, "blockOwnerDeletion": True}
        for i in range(w.get("replicas", 1)):
            pn = "%s-%d" % (name, i)
            out.append((pn, pn, name, {"statefulset.kubernetes.io/pod-name": pn,
                                       "apps.kubernetes.io/pod-index": str(i),
                                       "controller-revision-hash": "%s-%s" % (name, safe_rand("crh" + name, 10))},
                        owner))
    else:
        raise RuntimeError("unknown workload kind %r" % kind)
    return out


def k8s_container(c):
    out = {"name": c["name"], "image": c["image"], "imagePullPolicy": "IfNotPresent",
           "resources": {}, "terminationMessagePath": "/dev/termination-log",
           "terminationMessagePolicy": "File"}
    for k in ("command", "args", "env"):
        if c.get(k):
            out[k] = c[k]
    if c.get("ports"):
        out["ports"] = [dict({"protocol": "TCP"}, **p) for p in c["ports"]]
    return out


CLUSTER_SCOPED = {"Namespace", "Node"}


def spec_object(o):
    """A raw SPEC object with the metadata the API server would have given it
    at create: namespace (default), uid, creationTimestamp (kubectl's AGE),
    generation, and an empty status."""
    o = json.loads(json.dumps(o))
    md = o.setdefault("metadata", {})
    if not o.get("kind") or not o.get("apiVersion") or not md.get("name"):
        raise RuntimeError("SPEC object without kind, apiVersion or metadata.name: %s" % json.dumps(o)[:200])
    if o["kind"] not in CLUSTER_SCOPED:
        md.setdefault("namespace", "default")
    md.setdefault("uid", uid_of("%s/%s/%s" % (o["kind"], md.get("namespace", ""), md["name"])))
    md.setdefault("creationTimestamp", now())
    md.setdefault("generation", 1)
    o.setdefault("status", {})
    return o


def up(spec_path):
    t0 = time.time()
    with open(spec_path) as f:
        spec = json.load(f)
    node = spec.get("node", "mtc-node-1")
    os.makedirs(STATE + "/pods", exist_ok=True)
    os.makedirs(STATE + "/logs", exist_ok=True)
    pki = STATE + "/pki"
    make_pki(pki)
    with open(pki + "/ca.crt") as f:
        ca_pem = f.read()
    setup_node(pki)

    objs = []  # every API object
    # SPEC namespaces: "name" or {"name": ..., "labels": {...}} (e.g. pod-security.kubernetes.io/enforce)
    ns_labels = {}
    for n in ["default", "kube-system", "kube-public", "kube-node-lease"] + spec.get("namespaces", []):
        name, labels = (n, {}) if isinstance(n, str) else (n["name"], n.get("labels") or {})
        ns_labels.setdefault(name, {}).update(labels)
    for n, labels in ns_labels.items():
        objs.append({"kind": "Namespace", "apiVersion": "v1",
                     "metadata": {"name": n, "uid": uid_of("ns/" + n), "creationTimestamp": now(),
                                  "labels": dict(labels, **{"kubernetes.io/metadata.name": n})},
                     "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
    objs.append({"kind": "Node", "apiVersion": "v1",
                 "metadata": {"name": node, "uid": uid_of("node/" + node), "creationTimestamp": now(),
                              "labels": {"kubernetes.io/hostname": node, "kubernetes.io/os": "linux",
                                         "kubernetes.io/arch": "amd64",
                                         "node-role.kubernetes.io/control-plane": ""}},
                 "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]},
                 "status": {"addresses": [{"type": "InternalIP", "address": BRIDGE_IP},
                                          {"type": "Hostname", "address": node}],
                            "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                            "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                            "message": "kubelet is posting ready status",
                                            "lastHeartbeatTime": now(), "lastTransitionTime": now()}],
                            "nodeInfo": {"kubeletVersion": "v1.32.0", "kubeProxyVersion": "v1.32.0",
                                         "containerRuntimeVersion": "containerd://1.7.0",
                                         "operatingSystem": "linux", "architecture": "amd64",
                                         "osImage": "mirrord-trace test cluster", "kernelVersion": os.uname().release,
                                         "machineID": "", "systemUUID": "", "bootID": ""}}})

    # Services first (ClusterIPs; env vars need them).
    services = [{"kind": "Service", "apiVersion": "v1",
                 "metadata": {"name": "kubernetes", "namespace": "default", "uid": uid_of("svc/kubernetes"),
                              "creationTimestamp": now(), "labels": {"component": "apiserver", "provider": "kubernetes"}},
                 "spec": {"type": "ClusterIP", "clusterIP": K8S_SVC_IP, "clusterIPs": [K8S_SVC_IP],
                          "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": API_PORT}],
                          "sessionAffinity": "None"}, "status": {"loadBalancer": {}}},
                {"kind": "Service", "apiVersion": "v1",
                 "metadata": {"name": "kube-dns", "namespace": "kube-system", "uid": uid_of("svc/kube-dns"),
                              "creationTimestamp": now(), "labels": {"k8s-app": "kube-dns"}},
                 "spec": {"type": "ClusterIP", "clusterIP": DNS_SVC_IP, "clusterIPs": [DNS_SVC_IP],
                          "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}],
                          "sessionAffinity": "None"}, "status": {"loadBalancer": {}}}]
    endpoints = {("default", "kubernetes"): [BRIDGE_IP], ("kube-system", "kube-dns"): [BRIDGE_IP]}
    next_svc = 20
    workloads = spec.get("workloads", [])
    for w in workloads:
        if "service" not in w:
            continue
        ip = "10.96.0.%d" % next_svc
        next_svc += 1
        s = w["service"]
        sname = s.get("name", w["name"])
        services.append({"kind": "Service", "apiVersion": "v1",
                         "metadata": {"name": sname, "namespace": w["namespace"],
                                      "uid": uid_of("svc/%s/%s" % (w["namespace"], sname)),
                                      "creationTimestamp": now(), "labels": dict(w.get("labels", {}))},
                         "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                                  "selector": dict(w.get("labels", {})), "sessionAffinity": "None",
                                  "ports": [dict({"protocol": "TCP"}, **p) for p in s["ports"]]},
                         "status": {"loadBalancer": {}}})
        w["_svc"] = (w["namespace"], sname)

    # Pods: addresses and names.
    plan = []
    idx = 10
    for w in workloads:
        for (pn, hostname, subdomain, extra, owner) in workload_pods(w):
            plan.append((w, pn, hostname, subdomain, extra, owner, idx, "10.244.0.%d" % idx))
            if w.get("_svc"):
                endpoints.setdefault(w["_svc"], []).append("10.244.0.%d" % idx)
            idx += 1
    svc_rules = service_rules(services, endpoints)

    tokens = {"admin": None}
    admin_token = b64u(os.urandom(24))
    tokens = {admin_token: {"user": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]}}
    pods_json = []
    dns = ["--host-record=kubernetes.default.svc.%s,%s" % (DOMAIN, K8S_SVC_IP),
           "--host-record=kube-dns.kube-system.svc.%s,%s" % (DOMAIN, DNS_SVC_IP)]
    for svc in services[2:]:
        dns.append("--host-record=%s.%s.svc.%s,%s" % (svc["metadata"]["name"], svc["metadata"]["namespace"],
                                                      DOMAIN, svc["spec"]["clusterIP"]))
    waits = []
    for (w, pn, hostname, subdomain, extra, owner, i, ip) in plan:
        ns = w["namespace"]
        puid = uid_of("pod/%s/%s" % (ns, pn))
        labels = dict(w.get("labels", {}), **extra)
        ctrs = [k8s_container(c) for c in w["containers"]]
        pod = pod_object(pn, ns, puid, labels, w.get("annotations"), ctrs, node, owner,
                         hostname if subdomain else None, subdomain)
        netns = new_pod_netns(i, ip)
        apply_service_rules(netns, svc_rules)
        pdir = "%s/pods/%s_%s" % (STATE, ns, pn)
        token = sa_token(ns, pn)
        tokens[token] = {"user": "system:serviceaccount:%s:default" % ns,
                         "groups": ["system:serviceaccounts", "system:serviceaccounts:" + ns,
                                    "system:authenticated"], "pod": "%s/%s" % (ns, pn)}
        write_pod_files(pdir, pn, ns, ip, hostname, subdomain, token, ca_pem)
        cids, pids = {}, {}
        for c in w["containers"]:
            argv = image_command(c)
            if argv is None:
                raise RuntimeError("no local program for image %r (container %s of %s)" % (c["image"], c["name"], pn))
            pid, cid = start_container(netns, pdir, puid, hostname, c, argv,
                                       container_env(c, services, ns, hostname))
            cids[c["name"]], pids[c["name"]] = cid, pid
            for p in c.get("ports") or []:
                if c["image"].startswith("mt/sleep"):
                    continue
                waits.append((ip, p["containerPort"], p.get("protocol", "TCP")))
        pod["status"] = running_status(pod, ip, now(), cids)
        objs.append(pod)
        write_pod_dns(ns, pn, ip, hostname, subdomain)
        pods_json.append({"name": pn, "namespace": ns, "node": node, "uid": puid, "ip": ip,
                          "netns": netns_path(netns), "netnsName": netns, "dir": pdir,
                          "containers": [{"name": c["name"], "pid": pids[c["name"]],
                                          "containerID": "containerd://" + cids[c["name"]],
                                          "image": c["image"]} for c in w["containers"]]})

    # Workload objects.
    for w in workloads:
        ns, name, kind = w["namespace"], w["name"], w["kind"]
        labels = w.get("labels", {})
        if kind == "Pod":
            continue
        ctrs = [k8s_container(c) for c in w["containers"]]
        tmpl = {"metadata": {"labels": dict(labels)},
                "spec": {"containers": ctrs, "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                         "terminationGracePeriodSeconds": 30, "schedulerName": "default-scheduler"}}
        if w.get("annotations"):
            tmpl["metadata"]["annotations"] = dict(w["annotations"])
        n = w.get("replicas", 1)
        if kind == "Deployment":
            h = safe_rand("rs/%s/%s" % (ns, name), 10)
            duid = uid_of("deploy/%s/%s" % (ns, name))
            objs.append({"kind": "Deployment", "apiVersion": "apps/v1",
                         "metadata": {"name": name, "namespace": ns, "uid": duid, "generation": 1,
                                      "creationTimestamp": now(), "labels": dict(labels),
                                      "annotations": {"deployment.kubernetes.io/revision": "1"}},
                         "spec": {"replicas": n, "selector": {"matchLabels": dict(labels)}, "template": tmpl,
                                  "strategy": {"type": "RollingUpdate",
                                               "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                                  "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600},
                         "status": {"observedGeneration": 1, "replicas": n, "updatedReplicas": n,
                                    "readyReplicas": n, "availableReplicas": n,
                                    "conditions": [{"type": "Available", "status": "True",
                                                    "reason": "MinimumReplicasAvailable",
                                                    "message": "Deployment has minimum availability.",
                                                    "lastUpdateTime": now(), "lastTransitionTime": now()}]}})
            rtmpl = json.loads(json.dumps(tmpl))
            rtmpl["metadata"]["labels"]["pod-template-hash"] = h
            objs.append({"kind": "ReplicaSet", "apiVersion": "apps/v1",
                         "metadata": {"name": "%s-%s" % (name, h), "namespace": ns,
                                      "uid": uid_of("rs/%s/%s-%s" % (ns, name, h)), "generation": 1,
                                      "creationTimestamp": now(), "labels": dict(labels, **{"pod-template-hash": h}),
                                      "annotations": {"deployment.kubernetes.io/revision": "1",
                                                      "deployment.kubernetes.io/desired-replicas": str(n)},
                                      "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                                           "name": name, "uid": duid, "controller": True,
                                                           "blockOwnerDeletion": True}]},
                         "spec": {"replicas": n, "selector": {"matchLabels": dict(labels, **{"pod-template-hash": h})},
                                  "template": rtmpl},
                         "status": {"replicas": n, "fullyLabeledReplicas": n, "readyReplicas": n,
                                    "availableReplicas": n, "observedGeneration": 1}})
        elif kind == "StatefulSet":
            objs.append({"kind": "StatefulSet", "apiVersion": "apps/v1",
                         "metadata": {"name": name, "namespace": ns, "uid": uid_of("sts/%s/%s" % (ns, name)),
                                      "generation": 1, "creationTimestamp": now(), "labels": dict(labels)},
                         "spec": {"replicas": n, "selector": {"matchLabels": dict(labels)}, "template": tmpl,
                                  "serviceName": w.get("_svc", (ns, name))[1], "podManagementPolicy": "OrderedReady",
                                  "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                                  "revisionHistoryLimit": 10},
                         "status": {"observedGeneration": 1, "replicas": n, "readyReplicas": n,
                                    "currentReplicas": n, "updatedReplicas": n, "availableReplicas": n}})
    for o in spec.get("objects", []):  # extra raw objects (e.g. CronJobs)
        objs.append(spec_object(o))
    objs += services

    # kube-dns: dnsmasq in the node namespace on the bridge address; pods reach
    # it as 10.96.0.10 through their DNAT rules. No upstream: any other name
    # is NXDOMAIN, so nothing leaves the machine.
    os.makedirs(dns_hosts_dir(), exist_ok=True)
    dnslog = open(STATE + "/logs/dnsmasq", "ab")
    dnsmasq = subprocess.Popen(["nsenter", "--net=" + netns_path(NODE_NS), "dnsmasq", "--keep-in-foreground",
                      "--conf-file=/dev/null", "--user=root", "--group=root", "--pid-file=", "--no-resolv",
                      "--no-hosts", "--no-poll", "--bind-interfaces", "--listen-address=" + BRIDGE_IP,
                      "--local=/%s/" % DOMAIN, "--address=/#/", "--log-queries", "--log-facility=-",
                      "--domain-needed", "--hostsdir=" + dns_hosts_dir()] + dns,
                     stdin=subprocess.DEVNULL, stdout=dnslog, stderr=subprocess.STDOUT, start_new_session=True)

    with open(STATE + "/objects.json", "w") as f:
        json.dump(objs, f, indent=1)
    with open(STATE + "/tokens.json", "w") as f:
        json.dump(tokens, f, indent=1)
    os.chmod(STATE + "/tokens.json", 0o600)
    with open(STATE + "/pods.json.tmp", "w") as f:
        json.dump(pods_json, f, indent=1)
    os.rename(STATE + "/pods.json.tmp", STATE + "/pods.json")
    with open(STATE + "/svc-rules", "w") as f:
        f.write(svc_rules)
    with open(STATE + "/next-pod-index", "w") as f:
        f.write(str(idx))
    # What `up` checks before it calls a cluster healthy: the SPEC's
    # containers and kube-dns (pods the kubelet ran later may have ended).
    with open(STATE + "/up-pids", "w") as f:
        f.write("".join("%d\n" % c["pid"] for p in pods_json for c in p["containers"]))
        f.write("%d\n" % dnsmasq.pid)

    # The agent image's program, fixed now for the API server's kubelet and
    # recorded in cluster.env (empty: none yet; the kubelet looks again at
    # each agent pod, so building after up works).
    agent = agent_bin()
    if agent:
        os.environ["MIRRORD_TRACE_AGENT_BIN"] = agent
    else:
        log("note: no agent program at %s (%s): agent pods get ErrImagePull until it is built"
            % agent_bin_choice())

    # The API server, in the node namespace (reached from the workstation
    # link and, through the kubernetes Service, from pods).
    apilog = open(STATE + "/logs/apiserver", "ab")
    subprocess.Popen(["nsenter", "--net=" + netns_path(NODE_NS), "/usr/bin/python3", "-u",
                      os.path.join(HERE, "apiserver.py"), "--state", STATE, "--node", node],
                     stdin=subprocess.DEVNULL, stdout=apilog, stderr=subprocess.STDOUT, start_new_session=True,
                     env=dict(os.environ, MIRRORD_TRACE_CLUSTER_DIR=STATE))
    write_kubeconfig(STATE + "/kubeconfig", "https://%s:%d" % (API_IP, API_PORT), pki)
    write_kubeconfig(STATE + "/kubeconfig-token", "https://%s:%d" % (API_IP, API_PORT), pki, admin_token)
    waits.append((BRIDGE_IP, 53, "TCP"))
    waits.append((BRIDGE_IP, API_PORT, "TCP"))
    wait_tcp(NODE_NS, waits)
    wait_tcp(WS_NS, [(API_IP, API_PORT, "TCP")])
    with open(STATE + "/cluster.env.tmp", "w") as f:
        f.write("""# Written by tests/cluster/up; shell-sourceable. See tests/cluster/README.md.
MIRRORD_TRACE_CLUSTER_DIR=%(s)s
KUBECONFIG=%(s)s/kubeconfig
KUBECONFIG_TOKEN=%(s)s/kubeconfig-token
ADMIN_TOKEN=%(tok)s
CA_CERT=%(s)s/pki/ca.crt
WORKSTATION_NETNS=/run/netns/%(ws)s
WORKSTATION_NETNS_NAME=%(ws)s
WORKSTATION_IP=%(wsip)s
NODE_NETNS=/run/netns/%(node_ns)s
NODE_NETNS_NAME=%(node_ns)s
NODE_NAME=%(node)s
API_SERVER=https://%(api)s:%(port)d
API_SERVER_IP=%(api)s
API_SERVER_PORT=%(port)d
ADMIN_SOCKET=%(s)s/admin.sock
POD_CIDR=%(pcidr)s
SERVICE_CIDR=%(scidr)s
KUBERNETES_SERVICE_HOST=%(k8s)s
KUBERNETES_SERVICE_PORT=443
CLUSTER_DNS_IP=%(dns)s
CLUSTER_DOMAIN=%(dom)s
PODS_JSON=%(s)s/pods.json
MIRRORD_TRACE_AGENT_BIN=%(agent)s
""" % {"agent": agent or "", "s": STATE, "tok": admin_token, "ws": WS_NS, "wsip": WS_IP, "node_ns": NODE_NS, "node": node,
       "api": API_IP, "port": API_PORT, "pcidr": POD_CIDR, "scidr": SVC_CIDR, "k8s": K8S_SVC_IP,
       "dns": DNS_SVC_IP, "dom": DOMAIN})
    os.rename(STATE + "/cluster.env.tmp", STATE + "/cluster.env")
    log("up in %.1f s: %d pods, API server %s:%d (from netns %s); env in %s/cluster.env"
        % (time.time() - t0, len(pods_json), API_IP, API_PORT, WS_NS, STATE))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "up":
        try:
            up(sys.argv[2])
        except Exception as e:  # noqa: BLE001 - report, the caller tears down
            log("error: %s" % e)
            sys.exit(1)
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)
