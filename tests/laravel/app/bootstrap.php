<?php
// A small Laravel application as the design describes it: Illuminate Database and Eloquent from
// Debian's php-laravel-framework (its autoloaders, no composer), PDO pgsql. The connection comes
// from the environment as Laravel's config/database.php reads it (DB_HOST, DB_PORT, DB_DATABASE,
// DB_USERNAME, DB_PASSWORD), and the application's time zone from APP_TIMEZONE.

declare(strict_types=1);

require_once '/usr/share/php/Illuminate/Database/autoload.php';
require_once '/usr/share/php/Illuminate/Events/autoload.php';
require_once __DIR__ . '/Models.php';
require_once __DIR__ . '/BookingPath.php';

use Illuminate\Database\Capsule\Manager as Capsule;
use Illuminate\Events\Dispatcher;
use Illuminate\Container\Container;

function boot_database(): Capsule
{
    // config/app.php's timezone (APP_TIMEZONE here): Eloquent's timestamps are its wall clock
    $timezone = getenv('APP_TIMEZONE') ?: 'UTC';
    date_default_timezone_set($timezone);
    $capsule = new Capsule();
    $capsule->addConnection([
        'driver' => 'pgsql',
        'host' => getenv('DB_HOST') ?: '127.0.0.1',
        'port' => getenv('DB_PORT') ?: '5432',
        'database' => getenv('DB_DATABASE') ?: 'postgres',
        'username' => getenv('DB_USERNAME') ?: 'postgres',
        'password' => getenv('DB_PASSWORD') ?: '',
        'charset' => 'utf8',
        'prefix' => '',
        'schema' => 'public',
        'sslmode' => 'disable',
        // the session's TimeZone, so that a timestamptz column reads the wall clock right
        'timezone' => $timezone,
        // behind a transaction pooler a statement prepared on one server connection is not
        // there on the next (docs/booking-path.md)
        'options' => [PDO::PGSQL_ATTR_DISABLE_PREPARES => true],
    ]);
    $capsule->setEventDispatcher(new Dispatcher(new Container()));
    $capsule->setAsGlobal();
    $capsule->bootEloquent();
    return $capsule;
}
