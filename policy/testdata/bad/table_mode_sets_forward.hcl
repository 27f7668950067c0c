# want: 3:14 table_mode = "sets" does not support doors with forward targets yet
table      = "mine"
table_mode = "sets"
door "app" {
  sequence = ["7000/tcp", "8500/udp", "9100/tcp"]
  forward  = ["8080/tcp"]
}
