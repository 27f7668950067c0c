# want: 6:19 hmac_digest is one of md5
door "s" {
  spa {}
  client "a" {
    key_file    = "../secrets/alice.spa"
    hmac_digest = "sha2"
  }
  open = ["22"]
}
