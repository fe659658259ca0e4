# SPDX-License-Identifier: GPL-2.0-or-later
"""The lab's VM harness: MachineA and MachineB under QEMU (software
emulation), each with two virtio NICs cabled back to back over UDP sockets on
loopback, a human monitor socket (set_link, device_add/device_del) and a
virtio-serial channel to the guest agent (lab/guest/lab-agent).

Nothing here leaves loopback: the cables are UDP between two QEMU processes
on 127.0.0.1. A VM given an ssh_port has one more NIC, QEMU user-mode
networking with restrict=on (the guest reaches nothing outside) whose only
way in is the host's 127.0.0.1:ssh_port forwarded to the guest's sshd: a
real SSH path for Ansible (tests/lab/test_56_ansible.py). ib40's config
never names it, and it stays down until ssh_up() configures it.
"""
import base64
import itertools
import json
import os
import shlex
import shutil
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
RUN = os.path.join(HERE, "run")

# The HOWTO's MACs on MachineA; MachineB gets the same pattern one octet up.
MACHINES = {
    "a": {"hostname": "machinea", "macs": ("00:02:c9:3e:ca:b1", "00:02:c9:3e:ca:b0"),
          "address": "10.30.0.1"},
    "b": {"hostname": "machineb", "macs": ("00:02:c9:3e:cb:b1", "00:02:c9:3e:cb:b0"),
          "address": "10.30.0.2"},
    # the third node of lab/mesh.py's full mesh only
    "c": {"hostname": "machinec", "macs": ("00:02:c9:3e:cc:b1", "00:02:c9:3e:cc:b0"),
          "address": "10.30.0.3"},
}


class LabError(Exception):
    pass


@dataclass
class Result:
    argv: str
    rc: int
    out: str
    err: str
    secs: float = 0.0

    def check(self):
        if self.rc != 0:
            raise LabError("guest command failed (rc %s): %s\n--- stdout\n%s--- stderr\n%s"
                           % (self.rc, self.argv, self.out, self.err))
        return self


def _free_port(kind):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def free_udp_port():
    return _free_port(socket.SOCK_DGRAM)


def free_tcp_port():
    return _free_port(socket.SOCK_STREAM)


def _connect_unix(path, timeout):
    deadline = time.monotonic() + timeout
    while True:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class AgentChannel:
    """JSON lines over QEMU's chardev socket to the guest agent. Survives
    guest reboots: the host end stays connected; a new agent says hello."""

    def __init__(self, path):
        self.sock = _connect_unix(path, 10)
        self.ids = itertools.count(1)
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.replies = {}
        self.hellos = []
        self.closed = False
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        buf = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                with self.cond:
                    self.closed = True
                    self.cond.notify_all()
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                with self.cond:
                    if msg.get("event") == "hello":
                        self.hellos.append(msg)
                    elif "id" in msg:
                        self.replies[msg["id"]] = msg
                    self.cond.notify_all()

    def send(self, req):
        rid = next(self.ids)
        req = dict(req, id=rid)
        self.sock.sendall((json.dumps(req) + "\n").encode())
        return rid

    def wait_reply(self, rid, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while rid not in self.replies:
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    raise LabError("no reply from guest agent within %.0f s" % timeout)
                self.cond.wait(left)
            return self.replies.pop(rid)

    def call(self, req, timeout):
        return self.wait_reply(self.send(req), timeout)


class Monitor:
    """QEMU's human monitor (HMP) on a unix socket."""

    def __init__(self, path):
        self.sock = _connect_unix(path, 10)
        self.lock = threading.Lock()
        self._read_prompt(10)

    def _read_prompt(self, timeout):
        self.sock.settimeout(timeout)
        buf = b""
        while not buf.endswith(b"(qemu) "):
            chunk = self.sock.recv(4096)
            if not chunk:
                raise LabError("QEMU monitor closed")
            buf += chunk
        return buf.decode(errors="replace")

    def command(self, line, timeout=10):
        with self.lock:
            self.sock.sendall((line + "\n").encode())
            text = self._read_prompt(timeout)
        # HMP echoes the command line (with terminal escapes); keep the rest.
        text = text[: -len("(qemu) ")]
        lines = text.replace("\r", "").split("\n")
        return "\n".join(lines[1:]).strip()


class VM:
    def __init__(self, key, image_dir, rundir, cables, hostname=None, macs=None, ssh_port=None):
        """cables: list of (nic_id, local_port, peer_port), one per NIC.
        ssh_port: a host TCP port on 127.0.0.1 forwarded to the guest's port 22."""
        spec = MACHINES[key]
        self.key = key
        self.hostname = hostname or spec["hostname"]
        self.macs = macs or spec["macs"]
        self.address = spec["address"]
        self.image_dir = image_dir
        self.dir = os.path.join(rundir, self.hostname)
        self.cables = cables
        self.ssh_port = ssh_port
        self.proc = None
        self.agent = None
        self.monitor = None
        self.boot_ids = []

    # ---- life cycle
    def argv(self):
        d = self.dir
        argv = [
            "qemu-system-x86_64", "-name", self.hostname, "-nodefaults",
            "-accel", "tcg", "-M", "pc", "-smp", "1", "-m", "768",
            "-display", "none", "-vga", "none",
            # Distinct SMBIOS UUIDs: systemd takes a VM's first machine-id
            # from it, and networkd derives bond0's MAC from the machine-id.
            "-uuid", str(uuid.uuid5(uuid.NAMESPACE_DNS, self.hostname + ".lab.ib40")),
            "-kernel", os.path.join(self.image_dir, "vmlinuz"),
            "-initrd", os.path.join(self.image_dir, "initrd.img"),
            "-append", "root=/dev/vda rw console=ttyS0 edd=off systemd.hostname=%s" % self.hostname,
            "-drive", "file=%s,if=virtio,format=qcow2,cache=unsafe" % os.path.join(d, "disk.qcow2"),
            "-serial", "file:" + os.path.join(d, "console.log"),
            "-monitor", "unix:%s,server=on,wait=off" % os.path.join(d, "monitor.sock"),
            "-chardev", "socket,id=agent,path=%s,server=on,wait=off" % os.path.join(d, "agent.sock"),
            "-device", "virtio-serial-pci,id=vser",
            "-device", "virtserialport,chardev=agent,name=org.ib40.lab.agent",
            "-device", "virtio-rng-pci",
        ]
        for (nic_id, local, peer), mac in zip(self.cables, self.macs):
            argv += ["-netdev", "socket,id=%s,udp=127.0.0.1:%d,localaddr=127.0.0.1:%d" % (nic_id, peer, local),
                     "-device", self.nic_device(nic_id, mac)]
        if self.ssh_port:
            # Last, so the cables keep their PCI slots (and kernel names).
            argv += ["-netdev", "user,id=ssh,restrict=on,hostfwd=tcp:127.0.0.1:%d-:22" % self.ssh_port,
                     "-device", self.nic_device("ssh", self.ssh_mac)]
        return argv

    @property
    def ssh_mac(self):
        return "52:54:00:40:00:%02x" % (ord(self.key) & 0xFF)

    @staticmethod
    def nic_device(nic_id, mac):
        return "virtio-net-pci,netdev=%s,mac=%s,id=dev_%s" % (nic_id, mac, nic_id)

    def start(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b",
                        os.path.join(self.image_dir, "disk.raw"), "-F", "raw",
                        os.path.join(self.dir, "disk.qcow2")], check=True)
        self.t_start = time.monotonic()
        self.qemu_log = open(os.path.join(self.dir, "qemu.log"), "w")
        self.proc = subprocess.Popen(self.argv(), stdout=self.qemu_log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.monitor = Monitor(os.path.join(self.dir, "monitor.sock"))
        self.agent = AgentChannel(os.path.join(self.dir, "agent.sock"))

    def wait_boot(self, timeout=240):
        """Waits for an agent hello from a boot not seen before. Returns the
        seconds it took (host clock) from the call."""
        t0 = time.monotonic()
        next_poll = t0 + 5
        seen = set(self.boot_ids)
        polls = []
        while True:
            with self.agent.cond:
                fresh = [h for h in self.agent.hellos if h["boot_id"] not in seen]
                for rid in polls:
                    reply = self.agent.replies.pop(rid, None)
                    if reply and reply.get("boot_id") and reply["boot_id"] not in seen:
                        fresh.append(reply)
                if fresh:
                    self.boot_ids.append(fresh[-1]["boot_id"])
                    return time.monotonic() - t0
                self.agent.cond.wait(1)
            if self.proc.poll() is not None:
                raise LabError("%s: QEMU exited (%s); console tail:\n%s"
                               % (self.hostname, self.proc.returncode, self.console_tail()))
            now = time.monotonic()
            if now - t0 > timeout:
                raise LabError("%s: no agent after %.0f s; console tail:\n%s"
                               % (self.hostname, timeout, self.console_tail()))
            if now > next_poll:
                # The hello may have gone out before the host listened.
                polls.append(self.agent.send({"op": "hello"}))
                next_poll = now + 5

    def reboot(self, timeout=240):
        self.agent.send({"op": "run", "argv": ["systemctl", "reboot"], "timeout": 30})
        return self.wait_boot(timeout)

    def stop(self, timeout=30):
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.monitor.command("system_powerdown")
            self.proc.wait(timeout)
        except Exception:
            pass
        if self.proc.poll() is None:
            try:
                self.monitor.command("quit")
                self.proc.wait(5)
            except Exception:
                self.proc.kill()
                self.proc.wait()

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    # ---- commands
    def run(self, cmd, timeout=60, check=True, stdin=""):
        """cmd: a shell string (run by /bin/sh in the guest) or an argv list."""
        req = {"op": "run", "timeout": timeout, "stdin": stdin}
        if isinstance(cmd, str):
            req["sh"] = cmd
            shown = cmd
        else:
            req["argv"] = list(cmd)
            shown = shlex.join(cmd)
        reply = self.agent.call(req, timeout + 30)
        if "error" in reply:
            raise LabError("%s: agent error for %s: %s" % (self.hostname, shown, reply["error"]))
        res = Result(shown, reply["rc"], reply["out"], reply["err"], reply.get("secs", 0.0))
        return res.check() if check else res

    def start_run(self, cmd, timeout=60):
        """Starts a command; returns a handle for finish_run (for ping/iperf
        running while the host pulls cables)."""
        req = {"op": "run", "timeout": timeout, "sh": cmd}
        return (cmd, timeout, self.agent.send(req))

    def finish_run(self, handle, check=True):
        cmd, timeout, rid = handle
        reply = self.agent.wait_reply(rid, timeout + 30)
        res = Result(cmd, reply.get("rc", -1), reply.get("out", ""), reply.get("err", reply.get("error", "")))
        return res.check() if check else res

    def put(self, path, data, mode="644"):
        if isinstance(data, str):
            data = data.encode()
        reply = self.agent.call({"op": "put", "path": path, "mode": mode,
                                 "data": base64.b64encode(data).decode()}, 120)
        if "error" in reply:
            raise LabError("%s: put %s: %s" % (self.hostname, path, reply["error"]))

    def get(self, path):
        reply = self.agent.call({"op": "get", "path": path}, 60)
        if "error" in reply:
            raise LabError("%s: get %s: %s" % (self.hostname, path, reply["error"]))
        return base64.b64decode(reply["data"])

    def bondready(self, wait=0):
        """When bond0 was first ready this boot (the agent's BondWatch);
        WAIT: up to that many seconds for it, asked once."""
        return self.agent.call({"op": "bondready", "wait": wait}, wait + 30)

    # ---- cables and hotplug (monitor)
    def set_link(self, nic_id, up):
        out = self.monitor.command("set_link %s %s" % (nic_id, "on" if up else "off"))
        if out:
            raise LabError("%s: set_link %s: %s" % (self.hostname, nic_id, out))

    def device_present(self, nic_id):
        return ("dev_%s:" % nic_id) in self.monitor.command("info network")

    def device_del(self, nic_id, timeout=60):
        """Unplugs the NIC and waits until QEMU has dropped it (the guest
        acknowledges the ACPI eject first), so it can be added back."""
        out = self.monitor.command("device_del dev_%s" % nic_id)
        if out:
            raise LabError("%s: device_del: %s" % (self.hostname, out))
        t0 = time.monotonic()
        while self.device_present(nic_id):
            if time.monotonic() - t0 > timeout:
                raise LabError("%s: dev_%s still present %.0f s after device_del"
                               % (self.hostname, nic_id, timeout))
            time.sleep(0.2)
        return time.monotonic() - t0

    def device_add(self, nic_id, mac):
        out = self.monitor.command("device_add " + self.nic_device(nic_id, mac))
        if out:
            raise LabError("%s: device_add: %s" % (self.hostname, out))

    # ---- the SSH path
    SSH_GUEST_ADDRESS = "10.0.2.15/24"  # where QEMU's user-mode hostfwd delivers

    def ssh_up(self, public_key):
        """Brings the SSH NIC up with QEMU's user-mode address, authorizes
        PUBLIC_KEY for root and starts sshd. Returns the NIC's name."""
        if not self.ssh_port:
            raise LabError("%s: booted without an SSH NIC (ssh_port)" % self.hostname)
        links = json.loads(self.run("ip -j link show").out)
        name = next(l["ifname"] for l in links if l.get("address") == self.ssh_mac)
        self.run("mkdir -p -m 700 /root/.ssh")
        self.put("/root/.ssh/authorized_keys", public_key, mode="600")
        self.run("ip addr replace %s dev %s && ip link set %s up && systemctl start ssh"
                 % (self.SSH_GUEST_ADDRESS, name, name))
        return name

    # ---- diagnostics
    def console_tail(self, n=40):
        try:
            with open(os.path.join(self.dir, "console.log"), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no console log)"

    def journal(self, args="-b -u 'ib40*' -u systemd-udevd --no-pager -o short-monotonic", lines=80):
        try:
            res = self.run("journalctl %s | tail -n %d" % (args, lines), timeout=60, check=False)
            return res.out + res.err
        except Exception as exc:
            return "(journal unavailable: %s)\n%s" % (exc, self.console_tail())


class Lab:
    """MachineA and MachineB, port 1 cabled to port 1 and port 2 to port 2.
    NIC ids are c1/c2 on both machines (cable 1, cable 2)."""

    def __init__(self, image_dir, rundir=os.path.join(RUN, "test"), cables=2, ssh=True):
        ports = {(k, i): free_udp_port() for k in "ab" for i in range(1, cables + 1)}
        self.vms = {}
        for key, other in (("a", "b"), ("b", "a")):
            wires = [("c%d" % i, ports[(key, i)], ports[(other, i)]) for i in range(1, cables + 1)]
            self.vms[key] = VM(key, image_dir, rundir, wires, ssh_port=free_tcp_port() if ssh else None)
        self.a, self.b = self.vms["a"], self.vms["b"]

    def __iter__(self):
        return iter((self.a, self.b))

    def parallel(self, fn, *args):
        """Runs fn(vm, *args) on both machines at once; re-raises the first error."""
        results, errors = {}, {}

        def one(vm):
            try:
                results[vm.key] = fn(vm, *args)
            except BaseException as exc:  # noqa: B902 - handed to the caller
                errors[vm.key] = exc
        threads = [threading.Thread(target=one, args=(vm,)) for vm in self]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise next(iter(errors.values()))
        return results["a"], results["b"]

    def start(self, timeout=300):
        for vm in self:
            vm.start()
        return self.parallel(lambda vm: vm.wait_boot(timeout))

    def reboot(self, timeout=300):
        return self.parallel(lambda vm: vm.reboot(timeout))

    def stop(self):
        self.parallel(lambda vm: vm.stop())

    def set_cable(self, n, a_up, b_up):
        self.a.set_link("c%d" % n, a_up)
        self.b.set_link("c%d" % n, b_up)
