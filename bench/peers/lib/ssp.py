"""SimpleSAMLphp 1.19 (the Debian package) as the SAML peer: its configuration, an IdP key made
afresh for every run, the bench SP as a remote SP, and an Apache (prefork + mod_php) that
listens on 127.0.0.1:PORT. Everything is written under ``<work>/saml/ssp``; only Debian's own
files are read from outside it.

Apache starts as root and its children run as ``www-data``: they read the configuration and
the IdP key and write sessions, logs and temp files there, so every folder above the work
folder needs ``o+x`` (checked before Apache starts)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from saml import ACS, SP, certificate_b64, self_signed

SSP_WWW = Path("/usr/share/simplesamlphp/www")
ATTRIBUTE_MAPS = Path("/etc/simplesamlphp/attributemap")
MODULES = Path("/usr/lib/apache2/modules")
WRITABLE = ("log", "data", "tmp", "sessions")
SALT = "idp-peers-secret-salt-0123456789abcdef0123456789"

# alice as the project's demo directory has her, with the attributes the project releases
ALICE_ATTRIBUTES = """
            'urn:oid:0.9.2342.19200300.100.1.1' => ['alice'],
            'urn:oid:0.9.2342.19200300.100.1.3' => ['alice@example.org'],
            'urn:oid:2.16.840.1.113730.3.1.241' => ['Alice Liddell'],
            'urn:oid:1.3.6.1.4.1.5923.1.5.1.1' => ['admins', 'engineering'],"""


def write(folder: Path, port: int, sp_cert_pem: bytes) -> Path:
    """Write SimpleSAMLphp's and Apache's configuration under ``folder``; return the Apache
    configuration file. Sessions, logs and temp files of an earlier run are removed."""
    for d in (*WRITABLE, "run"):
        shutil.rmtree(folder / d, ignore_errors=True)
    for d in ("config", "metadata", "cert", "info", *WRITABLE, "run"):
        (folder / d).mkdir(parents=True, exist_ok=True)
    key_pem, cert_pem = self_signed("peers-simplesamlphp-idp")
    (folder / "cert" / "idp.key.pem").write_bytes(key_pem)
    (folder / "cert" / "idp.crt.pem").write_bytes(cert_pem)
    (folder / "info" / "opcache.php").write_text(OPCACHE_PHP)
    (folder / "config" / "config.php").write_text(_config_php(folder, port))
    (folder / "config" / "authsources.php").write_text(f"""<?php
$config = [
    'admin' => ['core:AdminPassword'],
    'bench-users' => [
        'exampleauth:UserPass',
        'alice:alice-password' => [{ALICE_ATTRIBUTES}
        ],
    ],
];
""")
    (folder / "metadata" / "saml20-idp-hosted.php").write_text("""<?php
$metadata['__DYNAMIC:1__'] = [
    'host' => '__DEFAULT__',
    'privatekey' => 'idp.key.pem',
    'certificate' => 'idp.crt.pem',
    'auth' => 'bench-users',
    'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    'saml20.sign.response' => true,
    'saml20.sign.assertion' => true,
    'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri',
    'NameIDFormat' => 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
    // a pairwise persistent NameID (salted hash), as the project's HMAC-derived one
    'authproc' => [10 => ['class' => 'saml:PersistentNameID',
                          'attribute' => 'urn:oid:0.9.2342.19200300.100.1.1']],
];
""")
    (folder / "metadata" / "saml20-sp-remote.php").write_text(f"""<?php
$metadata['{SP}'] = [
    'AssertionConsumerService' => [[
        'Binding' => 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST',
        'Location' => '{ACS}',
        'index' => 0,
    ]],
    'certData' => '{certificate_b64(sp_cert_pem)}',
    'validate.authnrequest' => true,
    'NameIDFormat' => 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
    'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    'saml20.sign.response' => true,
    'saml20.sign.assertion' => true,
];
""")
    conf = folder / "apache.conf"
    conf.write_text(_apache_conf(folder, port))
    _hand_to_www_data(folder)
    return conf


def _config_php(s: Path, port: int) -> str:
    return f"""<?php
$config = [
    'baseurlpath' => 'http://127.0.0.1:{port}/simplesaml/',
    'certdir' => '{s}/cert/',
    'loggingdir' => '{s}/log/',
    'datadir' => '{s}/data/',
    'tempdir' => '{s}/tmp',
    'metadatadir' => '{s}/metadata/',
    'attributenamemapdir' => '{ATTRIBUTE_MAPS}/',
    'secretsalt' => '{SALT}',
    'auth.adminpassword' => 'peers-admin-password',
    'admin.protectindexpage' => true,
    'admin.protectmetadata' => false,
    'admin.checkforupdates' => false,
    'technicalcontact_name' => 'peers',
    'technicalcontact_email' => 'peers@example.org',
    'timezone' => 'UTC',
    'enable.saml20-idp' => true,
    'enable.shib13-idp' => false,
    'debug' => ['saml' => false, 'backtraces' => false, 'validatexml' => false],
    'showerrors' => true,
    'errorreporting' => false,
    'production' => true,
    // a log file at NOTICE with one STAT line per SSO (as Debian's default configuration):
    // the counterpart of the project's audit record
    'logging.level' => SimpleSAML\\Logger::NOTICE,
    'logging.handler' => 'file',
    'logging.logfile' => 'simplesamlphp.log',
    'statistics.out' => [['class' => 'core:Log', 'key' => 'statistics', 'level' => 'notice']],
    'module.enable' => ['exampleauth' => true, 'core' => true, 'saml' => true],
    'session.duration' => 8 * 3600,
    'session.datastore.timeout' => 4 * 3600,
    'session.state.timeout' => 3600,
    'session.cookie.name' => 'SimpleSAMLSessionID',
    'session.cookie.secure' => false,
    'session.phpsession.cookiename' => 'SimpleSAML',
    'session.phpsession.savepath' => '{s}/sessions',
    'session.phpsession.httponly' => true,
    'session.authtoken.cookiename' => 'SimpleSAMLAuthToken',
    'language.available' => ['en'],
    'language.default' => 'en',
    'theme.use' => 'default',
    'store.type' => 'phpsession',
    'metadata.sources' => [['type' => 'flatfile']],
    'metadata.sign.enable' => false,
    'authproc.idp' => [],
    'authproc.sp' => [],
];
"""


def _apache_conf(s: Path, port: int) -> str:
    return f"""# Apache 2.4 for SimpleSAMLphp only: prefork + mod_php, keep-alive, an access log
ServerRoot /etc/apache2
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile {s}/run/apache.pid
Mutex file:{s}/run default
DefaultRuntimeDir {s}/run
User www-data
Group www-data
LoadModule mpm_prefork_module {MODULES}/mod_mpm_prefork.so
LoadModule authz_core_module {MODULES}/mod_authz_core.so
LoadModule alias_module {MODULES}/mod_alias.so
LoadModule mime_module {MODULES}/mod_mime.so
LoadModule env_module {MODULES}/mod_env.so
LoadModule dir_module {MODULES}/mod_dir.so
LoadModule php_module {MODULES}/libphp8.2.so
TypesConfig /etc/mime.types
ErrorLog {s}/log/apache-error.log
LogLevel warn
LogFormat "%h %l %u %t \\"%r\\" %>s %b %D" peers
CustomLog {s}/log/apache-access.log peers
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 60
StartServers 12
MinSpareServers 12
MaxSpareServers 24
ServerLimit 32
MaxRequestWorkers 32
MaxConnectionsPerChild 0
DocumentRoot {SSP_WWW}
SetEnv SIMPLESAMLPHP_CONFIG_DIR {s}/config
Alias /simplesaml {SSP_WWW}
Alias /peers-info {s}/info
<Directory {SSP_WWW}/>
    Require all granted
    DirectoryIndex index.php
</Directory>
<Directory {s}/info/>
    Require all granted
</Directory>
<FilesMatch "\\.php$">
    SetHandler application/x-httpd-php
</FilesMatch>
"""


# read after the runs: was PHP's opcache on, and did it serve the scripts?
OPCACHE_PHP = """<?php
$s = function_exists('opcache_get_status') ? opcache_get_status(false) : false;
header('Content-Type: application/json');
echo json_encode(['php' => PHP_VERSION, 'sapi' => PHP_SAPI,
    'opcache' => $s ? $s['opcache_enabled'] : false,
    'cached_scripts' => $s ? $s['opcache_statistics']['num_cached_scripts'] : 0,
    'hits' => $s ? $s['opcache_statistics']['hits'] : 0,
    'jit' => $s && isset($s['jit']) ? $s['jit']['enabled'] : null]);
"""


def _hand_to_www_data(s: Path) -> None:
    """Give www-data the IdP key and the writable folders, then check it can reach them."""
    if os.geteuid() != 0:
        raise SystemExit("the SimpleSAMLphp side starts Apache as root (its children run as "
                         "www-data): run the kit as root, or leave `ssp` out with --only")
    (s / "cert" / "idp.key.pem").chmod(0o600)
    subprocess.run(["chown", "-R", "www-data:www-data", str(s / "cert"),
                    *(str(s / d) for d in WRITABLE)], check=True)
    probe = subprocess.run(["runuser", "-u", "www-data", "--", "test", "-r",
                            str(s / "config" / "config.php"), "-a", "-w", str(s / "sessions")])
    if probe.returncode != 0:
        blocked = [str(p) for p in s.parents if not os.stat(p).st_mode & 0o001]
        raise SystemExit(f"www-data cannot read {s}/config or write {s}/sessions: every folder "
                         f"above it needs o+x (chmod o+x {' '.join(blocked) or '...'}), or set "
                         "PEERS_WORK to a folder under one that has it")
