# /etc/sesame/fleet/members.hcl: every member of the fleet, identical on
# every host (distribute it with your configuration management). Each
# member's key is what `sesame keygen --fleet -o FILE` printed for it;
# may_grant maps a group to the doors that member may open there. A record
# signed by a member outside its may_grant is refused by every host.

member "bastion-1" {
  key       = "ed25519:rZ6VEY9+S0/4SQLtlPQHoXCML4e07cNVeN+rTxruJNE="
  may_grant = { web = ["ssh", "admin"] }
}

member "web-1" {
  key       = "ed25519:jxO5eIA/vsW1lpM8dAW+15imfLbYrLGNVLFMveTChus="
  may_grant = { web = ["ssh"] }
}

member "web-2" {
  key       = "ed25519:6w+Ew4BiragPv08FVjAKwB3z21TiRw9rGQdcDehz09I="
  may_grant = { web = ["ssh"] }
}
