<?php
// The design's Eloquent models. Nothing here knows Booking Guard: its triggers and checks work
// under the application's ordinary writes.

declare(strict_types=1);

use Illuminate\Database\Eloquent\Model;
use Illuminate\Database\Eloquent\SoftDeletes;

class Company extends Model
{
    protected $guarded = [];
}

class Customer extends Model
{
    protected $guarded = [];
}

class Service extends Model
{
    protected $guarded = [];
}

class Call extends Model
{
    protected $guarded = [];
    protected $casts = ['booking_details' => 'array', 'appointment_made' => 'boolean'];

    public function appointments()
    {
        return $this->hasMany(Appointment::class);
    }
}

class Appointment extends Model
{
    use SoftDeletes;

    protected $guarded = [];
}
