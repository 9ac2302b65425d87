<?php
// The application's own migration, as `php artisan make:migration` writes it: Laravel's column
// types (bigserial ids, varchar(255) strings, timestamp(0) without time zone, json), logged in
// Laravel's migrations table. Booking Guard adopts these tables as they are. A table that exists
// already (Booking Guard applied first, to an empty database) is left as it is, as a migration
// written with Schema::hasTable leaves it.

declare(strict_types=1);

use Illuminate\Database\Capsule\Manager as Capsule;
use Illuminate\Database\Schema\Blueprint;

final class CreateBookingTables
{
    public const NAME = '2024_01_01_000000_create_booking_tables';

    public function up(): void
    {
        $schema = Capsule::schema();
        $create = function (string $table, Closure $columns) use ($schema): void {
            if (!$schema->hasTable($table)) {
                $schema->create($table, $columns);
            }
        };
        $create('companies', function (Blueprint $t) {
            $t->id();
            $t->string('name');
            $t->timestamps();
        });
        $create('customers', function (Blueprint $t) {
            $t->id();
            $t->foreignId('company_id')->constrained();
            $t->string('name')->nullable();
            $t->string('phone')->nullable();
            $t->timestamps();
        });
        $create('services', function (Blueprint $t) {
            $t->id();
            $t->foreignId('company_id')->constrained();
            $t->string('name');
            $t->integer('duration_minutes')->nullable();
            $t->timestamps();
        });
        $create('calls', function (Blueprint $t) {
            $t->id();
            $t->foreignId('company_id')->constrained();
            $t->string('retell_call_id')->unique();
            $t->string('from_number')->nullable();
            $t->string('status')->nullable();
            $t->foreignId('customer_id')->nullable()->constrained();
            $t->string('session_outcome')->nullable();
            $t->boolean('appointment_made')->default(false);
            $t->string('booking_id')->nullable();
            $t->json('booking_details')->nullable();
            $t->text('transcript')->nullable();
            $t->timestamps();
        });
        $create('appointments', function (Blueprint $t) {
            $t->id();
            $t->foreignId('company_id')->constrained();
            $t->foreignId('call_id')->nullable()->constrained();
            $t->foreignId('customer_id')->nullable()->constrained();
            $t->foreignId('service_id')->nullable()->constrained();
            $t->string('calcom_v2_booking_id')->nullable();
            $t->string('source')->nullable();
            $t->string('status')->default('scheduled');
            $t->timestamp('starts_at')->nullable();
            $t->timestamp('ends_at')->nullable();
            $t->timestamps();
            $t->softDeletes();
        });
    }
}
