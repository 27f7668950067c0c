# want: 2:9 is not a valid nftables table name
table = "1sesame"
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
}
