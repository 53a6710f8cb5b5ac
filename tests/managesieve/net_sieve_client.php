<?php
// Drives ManageSieve as Roundcube's managesieve plugin does (rcube_sieve.php over PEAR Net_Sieve):
// connect (STARTTLS when asked), login PLAIN, extensions, installScript, setActive, listScripts,
// getScript, removeScript. Prints a JSON summary; a failing step exits 2 with its error.
error_reporting(E_ALL & ~E_DEPRECATED & ~E_STRICT);
require_once 'Net/Sieve.php';
[$_, $port, $user, $pass, $usetls, $cafile] = $argv;
$out = [];
function fail($what, $r) { fwrite(STDERR, "$what: " . $r->getMessage() . "\n"); exit(2); }
$sieve = new Net_Sieve();
$options = ['ssl' => ['cafile' => $cafile, 'peer_name' => '127.0.0.1', 'verify_peer' => true]];
$r = $sieve->connect('127.0.0.1', (int)$port, $options, $usetls === '1');
if (is_a($r, 'PEAR_Error')) fail('connect', $r);
$r = $sieve->login($user, $pass, 'PLAIN', '');
if (is_a($r, 'PEAR_Error')) fail('login', $r);
$out['tls'] = isset(stream_get_meta_data($sieve->_sock->fp)['crypto']);
// rcube_sieve::get_extensions lowercases what Net_Sieve reports (in upper case).
$out['extensions'] = array_map('strtolower', (array)$sieve->getExtensions());
$script = "require [\"fileinto\"];\r\n# rule:[Lists]\r\nif header :contains \"list-id\" \"lists\" {\r\n\tfileinto \"Lists\";\r\n}\r\n";
$r = $sieve->installScript('roundcube', $script);
if (is_a($r, 'PEAR_Error')) fail('installScript', $r);
$r = $sieve->installScript('spare', "keep;\r\n");
if (is_a($r, 'PEAR_Error')) fail('installScript2', $r);
$r = $sieve->setActive('roundcube');
if (is_a($r, 'PEAR_Error')) fail('setActive', $r);
$active = null;
$list = $sieve->listScripts($active);
if (is_a($list, 'PEAR_Error')) fail('listScripts', $list);
$out['list'] = $list; $out['active'] = $active;
$got = $sieve->getScript('roundcube');
if (is_a($got, 'PEAR_Error')) fail('getScript', $got);
// Net_Sieve keeps the CRLF that ends the literal (RFC 5804 §2.9: script CRLF response).
$out['same'] = ($got === $script . "\r\n");
$out['got'] = $got;
$bad = $sieve->installScript('bad', "if true {\r\n  frobnicate;\r\n}\r\n");
$out['bad'] = is_a($bad, 'PEAR_Error') ? $bad->getMessage() : 'accepted';
$r = $sieve->removeScript('spare');
if (is_a($r, 'PEAR_Error')) fail('removeScript', $r);
$r = $sieve->removeScript('roundcube');
$out['remove_active'] = is_a($r, 'PEAR_Error') ? $r->getMessage() : 'removed';
$sieve->disconnect();
echo json_encode($out), "\n";
