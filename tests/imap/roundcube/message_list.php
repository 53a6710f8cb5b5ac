<?php
// Roundcube's message list, as far as it speaks IMAP: its own client class (rcube_imap_generic)
// and result parsers (rcube_result_index, rcube_result_thread), taken from Debian's
// roundcube-core by tests/imap/roundcube/fetch.sh, sort and thread a folder the way
// rcube_imap::list_messages does (UID SORT per column, UID THREAD with the roots ordered by a
// SORT). Prints one JSON object. Usage: php message_list.php LIB PORT USER PASSWORD FOLDER
[$_, $lib, $port, $user, $password, $folder] = $argv;
// Roundcube's own bootstrap: its helper functions (array_first, ...) and class autoloader.
require "$lib/bootstrap.php";

$imap = new rcube_imap_generic();
if (!$imap->connect('127.0.0.1', $user, $password, ['port' => (int) $port, 'timeout' => 30])) {
    fwrite(STDERR, "connect: " . $imap->error . "\n");
    exit(2);
}
$out = [
    'sort' => $imap->getCapability('SORT'),
    'display' => $imap->getCapability('SORT=DISPLAY'),
    'threads' => $imap->getCapability('THREAD'),
];
foreach (['ARRIVAL', 'DATE', 'FROM', 'SUBJECT', 'SIZE'] as $field) {
    $index = $imap->sort($folder, $field, 'ALL', true, 'UTF-8');
    $out['errors'][$field] = $index->is_error() ? $imap->error : null;
    $out[$field] = array_map('intval', $index->get());
    $index->revert();  // the list's descending order
    $out["$field desc"] = array_map('intval', $index->get());
}
foreach (['REFERENCES', 'ORDEREDSUBJECT'] as $algorithm) {
    $thread = $imap->thread($folder, $algorithm, 'ALL', true, 'UTF-8');
    $out['errors'][$algorithm] = $thread->is_error() ? $imap->error : null;
    $thread->sort($imap->sort($folder, 'DATE', 'ALL', true, 'UTF-8'));
    $out[$algorithm] = [
        'tree' => $thread->get_tree(),
        'list' => array_map('intval', $thread->get()),
        'depth' => $thread->get_thread_data()[0],  // what the list indents by
    ];
}
$imap->closeConnection();
echo json_encode($out), "\n";
