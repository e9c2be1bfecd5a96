//! The daemon's network view read from a real kernel: a network
//! namespace made for the test holds a veth pair with addresses, a
//! route via a gateway and permanent neighbours (no packet leaves it);
//! a thread joins the namespace and reads the view as uvsd does.
//! Needs root (as CI runs); the namespace is deleted even on failure.

use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use uvs_engine::daemon::netview;
use uvs_engine::route::{PortId, Route};

/// A network namespace deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Netns {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "uvs-nv-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name]);
        Netns { name }
    }

    fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all);
    }

    /// Run `f` on a thread inside the namespace.
    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("open netns");
            // SAFETY: setns on an open namespace fd; it changes only this
            // thread's network namespace.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("namespace thread")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_view_has_ports_addresses_routes_and_neighbours_of_the_namespace() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "this test needs root (CI runs as root)");
    let ns = Netns::new();
    ns.ip(&[
        "link", "add", "uvsa", "type", "veth", "peer", "name", "uvsb",
    ]);
    ns.ip(&[
        "link",
        "set",
        "uvsa",
        "address",
        "02:00:00:00:aa:01",
        "mtu",
        "1400",
        "up",
    ]);
    ns.ip(&["link", "set", "uvsb", "up"]);
    ns.ip(&["addr", "add", "10.250.0.1/24", "dev", "uvsa"]);
    ns.ip(&[
        "-6",
        "addr",
        "add",
        "2001:db8:250::1/64",
        "dev",
        "uvsa",
        "nodad",
    ]);
    ns.ip(&[
        "route",
        "add",
        "203.0.113.0/24",
        "via",
        "10.250.0.254",
        "dev",
        "uvsa",
    ]);
    ns.ip(&[
        "neigh",
        "add",
        "10.250.0.254",
        "lladdr",
        "02:00:00:00:bb:01",
        "dev",
        "uvsa",
        "nud",
        "permanent",
    ]);
    ns.ip(&[
        "-6",
        "neigh",
        "add",
        "2001:db8:250::fe",
        "lladdr",
        "02:00:00:00:bb:02",
        "dev",
        "uvsa",
        "nud",
        "permanent",
    ]);

    let (chosen, indices, view) = ns.run(|| {
        let chosen = netview::choose_interfaces(&[]).expect("list interfaces");
        let indices: Vec<u32> = chosen
            .iter()
            .map(|name| netview::link_info(name).expect("link info").index)
            .collect();
        let view = netview::read(&["uvsa".to_string()]).expect("read the view");
        (chosen, indices, view)
    });
    // Both veth ends are up, in ifindex order; lo is a loopback.
    let mut names = chosen.clone();
    names.sort();
    assert_eq!(names, vec!["uvsa".to_string(), "uvsb".to_string()]);
    assert!(
        indices.windows(2).all(|w| w[0] < w[1]),
        "{chosen:?} {indices:?}"
    );

    assert_eq!(view.ports.len(), 1);
    let port = &view.ports[0];
    assert_eq!(port.name, "uvsa");
    assert_eq!(port.mac, [2, 0, 0, 0, 0xaa, 1]);
    assert_eq!(port.mtu, 1400);
    assert_eq!(port.addr_v4, Some("10.250.0.1".parse().unwrap()));
    assert_eq!(port.addr_v6, Some("2001:db8:250::1".parse().unwrap()));

    let on_link = Route {
        prefix: "10.250.0.0".parse().unwrap(),
        len: 24,
        port: PortId(0),
        gateway: None,
    };
    let via = Route {
        prefix: "203.0.113.0".parse().unwrap(),
        len: 24,
        port: PortId(0),
        gateway: Some("10.250.0.254".parse().unwrap()),
    };
    assert!(view.routes.contains(&on_link), "{:?}", view.routes);
    assert!(view.routes.contains(&via), "{:?}", view.routes);
    assert!(
        view.routes
            .iter()
            .any(|r| r.prefix == "2001:db8:250::".parse::<IpAddr>().unwrap() && r.len == 64),
        "{:?}",
        view.routes
    );

    assert_eq!(
        view.neighbours
            .get(&"10.250.0.254".parse::<IpAddr>().unwrap()),
        Some(&[2, 0, 0, 0, 0xbb, 1])
    );
    assert_eq!(
        view.neighbours
            .get(&"2001:db8:250::fe".parse::<IpAddr>().unwrap()),
        Some(&[2, 0, 0, 0, 0xbb, 2])
    );
    // What the engine will do with it: a client behind the gateway.
    let hop = view.next_hop("203.0.113.9".parse().unwrap()).unwrap();
    assert_eq!(hop.port, PortId(0));
    assert_eq!(hop.src_mac, [2, 0, 0, 0, 0xaa, 1]);
    assert_eq!(hop.dst_mac, [2, 0, 0, 0, 0xbb, 1]);
    assert_eq!(hop.mtu, 1400);

    // A missing interface is an error naming it.
    let missing = ns.run(|| netview::read(&["uvs-none".to_string()]).unwrap_err());
    assert!(missing.to_string().contains("uvs-none"), "{missing}");
}
