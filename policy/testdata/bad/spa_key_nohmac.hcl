# want: 4:27 HMAC is mandatory
door "s" {
  spa {}
  client "a" { key_file = "../secrets/nohmac.spa" }
  open = ["22"]
}
