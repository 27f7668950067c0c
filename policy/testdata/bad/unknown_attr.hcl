# want: 2:1 Did you mean "table"
tabel = "sesame"
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
}
