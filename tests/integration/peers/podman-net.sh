# shellcheck shell=bash
# podman-net.sh (sourced, after podman-private.sh): a CNI bridge network of the test's own in
# the private podman's network config dir (DIR/net), and the removal of everything CNI leaves
# on the host, so that the host is as it was before, even after a failed test.
#
#   podman_net_setup NAME BRIDGE SUBNET   `podman network create --subnet SUBNET NAME` (podman
#                                         4.3 with CNI writes DIR/net/NAME.conflist: bridge,
#                                         host-local IPAM, portmap, firewall, tuning), its
#                                         bridge renamed BRIDGE (podman 4.3 names it
#                                         cni-podmanN and has no option for it)
#   podman_net_cleanup                    removes the network, the bridge, CNI's iptables rules
#                                         and chains for it, its host-local state
#                                         (/var/lib/cni/networks/NAME) and cached results, and
#                                         what CNI made on the host that was not there before
#                                         (/var/lib/cni, the firewall plugin's CNI-FORWARD and
#                                         CNI-ADMIN chains and FORWARD's jump to them); puts
#                                         net.ipv4.ip_forward back
#   podman_net_iptables                   the iptables rules (filter and nat) naming the
#                                         network or an address of its subnet
#   podman_net_own_chains                 the firewall plugin's chains that were not there
#                                         before and hold nothing but their own jump (the
#                                         clean-up removes them; another network's rules
#                                         would keep them)
#
# The backend must be CNI (podman 4.3 on Debian 12 without netavark): podman_net_setup fails
# otherwise.

# podman_net_snapshot: what CNI may change, as found before the network exists
podman_net_snapshot() {
	pmnet_had_cni_dir=$([ -d /var/lib/cni ] && echo yes)
	pmnet_had_networks=$([ -d /var/lib/cni/networks ] && echo yes)
	pmnet_had_results=$([ -d /var/lib/cni/results ] && echo yes)
	pmnet_had_forward=$(iptables -t filter -S CNI-FORWARD >/dev/null 2>&1 && echo yes)
	pmnet_had_admin=$(iptables -t filter -S CNI-ADMIN >/dev/null 2>&1 && echo yes)
	pmnet_ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)
}

podman_net_setup() {
	pmnet_name=$1
	pmnet_bridge=$2
	pmnet_subnet=$3
	podman_net_snapshot
	local backend conf=$pm_dir/net/$1.conflist
	backend=$(pm info --format '{{.Host.NetworkBackend}}' 2>/dev/null)
	[ "$backend" = cni ] || { echo "podman's network backend is '$backend', not cni" >&2; return 1; }
	pm network create --subnet "$pmnet_subnet" --disable-dns "$pmnet_name" >/dev/null || return 1
	[ -f "$conf" ] || { echo "podman network create wrote no $conf" >&2; return 1; }
	jq --arg b "$pmnet_bridge" '(.plugins[] | select(.type == "bridge")).bridge = $b' "$conf" \
		>"$conf.new" && mv "$conf.new" "$conf"
}

# podman_net_prefix: the subnet's address without the host part's zero ("10.123.7." for a /24)
podman_net_prefix() {
	local net=${pmnet_subnet%/*}
	echo "${net%.*}."
}

podman_net_iptables() {
	local t prefix
	prefix=$(podman_net_prefix)
	for t in filter nat; do
		iptables -t "$t" -S 2>/dev/null |
			grep -F -e "name: \\\"$pmnet_name\\\"" -e " $prefix" |
			sed "s/^/$t: /"
	done
	return 0
}

podman_net_own_chains() {
	[ -z "$pmnet_had_forward" ] && iptables -S CNI-FORWARD >/dev/null 2>&1 &&
		[ "$(iptables -S CNI-FORWARD 2>/dev/null | grep -vc -e '^-N ' -e '-j CNI-ADMIN$')" = 0 ] &&
		echo CNI-FORWARD
	[ -z "$pmnet_had_admin" ] && iptables -S CNI-ADMIN >/dev/null 2>&1 &&
		[ "$(iptables -S CNI-ADMIN 2>/dev/null | grep -vc '^-N ')" = 0 ] && echo CNI-ADMIN
	return 0
}

# podman_net_del_rules TABLE PATTERN: deletes the table's rules (not chains) whose line matches
# the fixed string PATTERN; prints the chains they jumped to
podman_net_del_rules() {
	local t=$1 line
	iptables -t "$t" -S 2>/dev/null | grep '^-A ' | grep -F -e "$2" | while read -r line; do
		eval "iptables -t $t -D ${line#-A }" 2>/dev/null
		case $line in *" -j CNI-"*) line=${line##* -j }; echo "${line%% *}" ;; esac
	done
	return 0
}

podman_net_cleanup() {
	[[ -n ${pmnet_name:-} ]] || return 0
	local prefix chain t
	prefix=$(podman_net_prefix)
	# Its containers first (CNI DEL for each), then the network and its bridge.
	if [[ -n ${pm_dir:-} && -d $pm_dir ]]; then
		PEERS_TIMEOUT=120 pm network rm -f "$pmnet_name" >/dev/null 2>&1
	fi
	ip link del "$pmnet_bridge" 2>/dev/null
	# A container whose teardown did not run leaves its rules: the bridge plugin's masquerade
	# chain in nat (its rules' comments name the network), the firewall plugin's accepts of its
	# address in CNI-FORWARD.
	for t in nat filter; do
		for chain in $(podman_net_del_rules "$t" "name: \\\"$pmnet_name\\\"") \
			$(podman_net_del_rules "$t" " $prefix"); do
			case $chain in CNI-FORWARD | CNI-ADMIN | CNI-HOSTPORT-*) continue ;; esac
			iptables -t "$t" -F "$chain" 2>/dev/null
			iptables -t "$t" -X "$chain" 2>/dev/null
		done
	done
	# The firewall plugin's chains stay after every container's DEL: remove them if they were
	# not there before and hold nothing but their own jump (another network's rules would).
	if [ -z "$pmnet_had_forward" ] &&
		[ "$(iptables -S CNI-FORWARD 2>/dev/null | grep -vc -e '^-N ' -e '-j CNI-ADMIN$')" = 0 ] &&
		[ "$(iptables -S CNI-ADMIN 2>/dev/null | grep -vc '^-N ')" = 0 ]; then
		podman_net_del_rules filter "-A FORWARD -m comment --comment \"CNI firewall plugin rules\" -j CNI-FORWARD" >/dev/null
		iptables -F CNI-FORWARD 2>/dev/null
		iptables -X CNI-FORWARD 2>/dev/null
		[ -z "$pmnet_had_admin" ] && iptables -X CNI-ADMIN 2>/dev/null
	fi
	# host-local's leases, and the cached results of its containers
	# (/var/lib/cni/results/NAME-CONTAINERID-IFNAME)
	rm -rf "/var/lib/cni/networks/$pmnet_name"
	rm -f /var/lib/cni/results/"$pmnet_name"-* 2>/dev/null
	[ -z "$pmnet_had_results" ] && rmdir /var/lib/cni/results 2>/dev/null
	[ -z "$pmnet_had_networks" ] && rmdir /var/lib/cni/networks 2>/dev/null
	[ -z "$pmnet_had_cni_dir" ] && rmdir /var/lib/cni 2>/dev/null
	# the bridge plugin with isGateway turns forwarding on
	[ -n "${pmnet_ip_forward:-}" ] && echo "$pmnet_ip_forward" >/proc/sys/net/ipv4/ip_forward
	pmnet_name=
	return 0
}
